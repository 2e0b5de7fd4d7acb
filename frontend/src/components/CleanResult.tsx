// A finished clean job: documents, characters and tokens before and after each step and per
// language, what each step removed (reasons and the first removed documents), and links to
// scan the new dataset or launch a run on it. Every figure is the worker's report.

import type { Job } from "../api/types";
import { int } from "../lib/format";

type Counts = { documents: number; characters: number; tokens: number };

function change(before: Counts, after: Counts, key: keyof Counts, tokens: boolean) {
  if (key === "tokens" && !tokens) return "–";
  return `${int(before[key])} → ${int(after[key])}`;
}

export function CleanResult({ job }: { job: Job }) {
  const r = job.result ?? {};
  const steps: any[] = r.steps ?? [];
  const langs: [string, { before: Counts; after: Counts }][] = Object.entries(r.by_language ?? {});
  const tokens = Boolean(r.tokenizer);
  const launch = `#/launch?${new URLSearchParams({ dataset: r.output ?? "" })}`;
  const scan = `#/datasets?${new URLSearchParams({ paths: r.output ?? "" })}`;
  return (
    <div class="clean-result">
      <p data-testid="clean-totals">
        Kept {int(r.after?.documents)} of {int(r.before?.documents)} documents, {int(r.after?.characters)} of {int(r.before?.characters)} characters
        {tokens ? `, ${int(r.after?.tokens)} of ${int(r.before?.tokens)} tokens` : ""} · <span class="mono small">{r.output}</span>
      </p>
      <p>
        <a class="btn btn-small" href={launch}>
          Launch a run on it
        </a>{" "}
        <a class="btn btn-small" href={scan}>
          Scan it
        </a>
      </p>
      <h3>Each step</h3>
      <table class="table clean-steps-table" data-testid="clean-steps">
        <thead>
          <tr>
            <th>Step</th>
            <th>Documents</th>
            <th>Removed</th>
            <th>Characters</th>
            <th>Tokens</th>
            <th>Why</th>
          </tr>
        </thead>
        <tbody>
          {steps.map((s, i) => (
            <tr key={i} data-step={s.step}>
              <td>
                {i + 1}. {s.step}
              </td>
              <td>{change(s.before, s.after, "documents", true)}</td>
              <td>{s.step === "pii" ? `${int(s.changed)} masked` : int(s.removed.documents)}</td>
              <td>{change(s.before, s.after, "characters", true)}</td>
              <td>{change(s.before, s.after, "tokens", tokens)}</td>
              <td class="small">
                {Object.entries(s.step === "pii" ? (s.masked ?? {}) : (s.reasons ?? {}))
                  .map(([k, v]) => `${k}: ${int(v as number)}`)
                  .join(", ")}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <h3>Each language</h3>
      <table class="table" data-testid="clean-languages">
        <thead>
          <tr>
            <th>Language</th>
            <th>Documents</th>
            <th>Characters</th>
            <th>Tokens</th>
          </tr>
        </thead>
        <tbody>
          {langs.map(([lang, c]) => (
            <tr key={lang} data-lang={lang}>
              <td>{lang}</td>
              <td>{change(c.before, c.after, "documents", true)}</td>
              <td>{change(c.before, c.after, "characters", true)}</td>
              <td>{change(c.before, c.after, "tokens", tokens)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h3>Removed examples</h3>
      <div data-testid="clean-examples">
        {steps.map((s, i) =>
          s.examples?.length ? (
            <details key={i} data-step={s.step}>
              <summary>
                {i + 1}. {s.step}: {s.examples.length} of {int(s.step === "pii" ? s.changed : s.removed.documents)}
              </summary>
              <ul class="clean-examples">
                {s.examples.map((e: any, j: number) => (
                  <li key={j}>
                    <div class="small">
                      <strong>{e.reason}</strong> · {e.file}:{e.line} · {e.language} ({e.confidence}){e.duplicate_of ? ` · copy of ${e.duplicate_of.file}:${e.duplicate_of.line}` : ""}
                    </div>
                    <pre class="clean-example">{e.text}</pre>
                  </li>
                ))}
              </ul>
            </details>
          ) : null,
        )}
      </div>
    </div>
  );
}
