// Compare: the summary that answers "which learns the language better, and at what cost?" —
// per run the method, trainable parameters, tokens seen, wall time, tokens/s and, per held-out
// set, step-0 and final bits/char and the change, with the text each run scored (a warning
// naming the difference when the runs did not score the same text); and the same prompt's
// samples side by side.

import { useEffect, useState } from "preact/hooks";
import { api, qs } from "../api/client";
import type { EvalSetInfo, Run, RunEvent, Samples } from "../api/types";
import { CHARACTER_DEFINITION } from "../api/contract";
import { change, changeText, forgettingText, loadSetInfo, scoredText, setKey, setNames } from "../lib/evalsets";
import { compact, duration, num, totalSeconds } from "../lib/format";
import type { Store } from "../lib/metrics";

export interface Compared {
  run: Run;
  store: Store;
}

interface Extra {
  start: RunEvent | null;
  sets: EvalSetInfo[];
  samples: Samples | null;
}

export function CompareEval({ loaded }: { loaded: Compared[] }) {
  const [extra, setExtra] = useState<Record<string, Extra>>({});
  // Whether the runs scored the same text: the server's rule (the verdict's too), not a copy.
  const [differences, setDifferences] = useState<string[]>([]);
  const key = loaded.map((l) => `${l.run.id}:${l.run.status}:${l.store.eval_loss?.step.length ?? 0}`).join(",");
  useEffect(() => {
    let alive = true;
    Promise.all(
      loaded.map(async (l) => {
        const [info, samples] = await Promise.all([loadSetInfo(l.run.id).catch(() => ({ sets: [], start: null })), api<Samples>(`/runs/${encodeURIComponent(l.run.id)}/samples`).catch(() => null)]);
        return [l.run.id, { ...info, samples }] as const;
      }),
    ).then((rows) => alive && setExtra(Object.fromEntries(rows)));
    api<{ differences: string[] }>(`/compare/text${qs({ run_id: loaded.map((l) => l.run.id) })}`)
      .then((r) => alive && setDifferences(r.differences))
      .catch(() => alive && setDifferences([]));
    return () => {
      alive = false;
    };
  }, [key]);

  const sets = [...new Set(loaded.flatMap((l) => setNames(l.store)))];
  const role = (n: string) => {
    for (const e of Object.values(extra)) {
      const r = e.sets.find((s) => s.name === n)?.role;
      if (r) return r;
    }
    return null;
  };
  const infoOf = (id: string, n: string) => extra[id]?.sets.find((s) => s.name === n);
  const seconds = (l: Compared) => totalSeconds(l.run);
  return (
    <>
      <section class="card">
        <div class="section-head">
          <h2>Summary</h2>
          <span class="muted small">bits per character of each held-out set: step 0 → final (change), over the text shown</span>
        </div>
        {differences.map((d) => (
          <div key={d} class="banner banner-failed" role="alert" data-testid="compare-text-warning">
            Not comparable: {d}
          </div>
        ))}
        <div class="table-wrap">
          <table class="table" data-testid="compare-summary">
            <thead>
              <tr>
                <th>Run</th>
                <th>Method</th>
                <th class="num">Trainable params</th>
                <th class="num">Tokens seen</th>
                <th class="num" title="every attempt">
                  Wall time
                </th>
                <th class="num" title="wall time of every attempt × processes">
                  Device-hours
                </th>
                <th class="num">Tokens/s</th>
                {sets.map((n) => (
                  <th key={n} class="num" data-set={n} title={`characters: ${CHARACTER_DEFINITION}`}>
                    {n}
                    {role(n) ? <span class="muted small"> ({role(n)})</span> : null}
                    <div class="muted small">bits/char · text scored</div>
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {loaded.map((l) => {
                const start = extra[l.run.id]?.start;
                const trainable = start?.data.trainable_params as number | undefined;
                const world = start?.data.world_size as number | undefined;
                const secs = seconds(l);
                return (
                  <tr key={l.run.id} data-run={l.run.id}>
                    <td>{l.run.name || l.run.id}</td>
                    <td>{l.run.method === "lora" ? "LoRA" : "full"}</td>
                    <td class="num">{compact(trainable)}</td>
                    <td class="num">{compact(l.run.tokens_seen)}</td>
                    <td class="num" data-testid="compare-wall">
                      {duration(secs)}
                    </td>
                    <td class="num" data-testid="compare-device-hours">
                      {secs !== null && world ? num((secs * world) / 3600, 3) : "–"}
                    </td>
                    <td class="num">{compact(l.run.tokens_per_second)}</td>
                    {sets.map((n) => {
                      const c = change(l.store[setKey(n, "bits_per_char")]);
                      const i = infoOf(l.run.id, n);
                      return (
                        <td key={n} class="num" data-set={n}>
                          <span data-testid="compare-bpc">
                            {c ? (c.lastStep === c.firstStep ? `${num(c.first, 4)} (${changeText(c)})` : `${num(c.first, 4)} → ${num(c.last, 4)} (${changeText(c)})`) : "–"}
                          </span>
                          <div class="muted small" data-testid="compare-scored" data-characters={i?.characters} data-documents={i?.documents} data-tokens={i?.tokens}>
                            {scoredText(i)}
                            {i ? ` · ${i.tokens.toLocaleString("en-US")} tokens` : ""}
                          </div>
                        </td>
                      );
                    })}
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
        {sets
          .filter((n) => role(n) === "retain")
          .flatMap((n) =>
            loaded.map((l) => {
              const text = forgettingText(n, change(l.store[setKey(n, "bits_per_char")]));
              return text ? (
                <p key={`${n}-${l.run.id}`} class="forgetting small" data-testid="compare-forgetting" data-run={l.run.id}>
                  <strong>{l.run.name || l.run.id}:</strong> {text}
                </p>
              ) : null;
            }),
          )}
      </section>
      <CompareSamples loaded={loaded} extra={extra} />
    </>
  );
}

/** Each prompt's greedy continuation at each run's last evaluated step (and step 0 of the first). */
function CompareSamples({ loaded, extra }: { loaded: Compared[]; extra: Record<string, Extra> }) {
  const prompts = new Map<string, { set: string; prompt: string }>();
  for (const l of loaded) for (const s of extra[l.run.id]?.samples?.samples ?? []) if (s.mode === "greedy") prompts.set(`${s.set}\u0000${s.prompt}`, { set: s.set, prompt: s.prompt });
  if (!prompts.size) return null;
  const at = (id: string, p: { set: string; prompt: string }, which: "first" | "last") => {
    const data = extra[id]?.samples;
    if (!data?.steps.length) return null;
    const step = which === "first" ? data.steps[0] : data.steps[data.steps.length - 1];
    const hit = data.samples.find((s) => s.step === step && s.mode === "greedy" && s.set === p.set && s.prompt === p.prompt);
    return hit ? { step, text: hit.text } : null;
  };
  const firstRun = loaded[0]?.run.id;
  // The baseline column only when some run has a later step: a step's sample appears once.
  const lastSteps = loaded.map((l) => extra[l.run.id]?.samples?.steps.at(-1));
  const firstStep = firstRun ? extra[firstRun]?.samples?.steps[0] : undefined;
  const baseline = firstStep !== undefined && lastSteps.some((s) => s !== undefined && s !== firstStep);
  return (
    <section class="card">
      <div class="section-head">
        <h2>Samples</h2>
        <span class="muted small">greedy continuation at each run's last evaluation</span>
      </div>
      <div class="table-wrap">
        <table class="table samples-table" data-testid="compare-samples">
          <thead>
            <tr>
              <th>Prompt</th>
              {baseline ? (
                <th>
                  Step {firstStep} ({loaded[0]?.run.name || firstRun})
                </th>
              ) : null}
              {loaded.map((l) => (
                <th key={l.run.id}>{l.run.name || l.run.id}</th>
              ))}
            </tr>
          </thead>
          <tbody>
            {[...prompts.values()].map((p) => (
              <tr key={`${p.set}:${p.prompt}`}>
                <td>
                  <span class="muted small mono">{p.set}</span> {p.prompt}
                </td>
                {baseline ? <td class="sample-text">{firstRun ? (at(firstRun, p, "first")?.text ?? "–") : "–"}</td> : null}
                {loaded.map((l) => {
                  const s = at(l.run.id, p, "last");
                  return (
                    <td key={l.run.id} class="sample-text" data-run={l.run.id}>
                      {s ? s.text : "–"}
                      {s ? <div class="muted small">step {s.step}</div> : null}
                    </td>
                  );
                })}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
