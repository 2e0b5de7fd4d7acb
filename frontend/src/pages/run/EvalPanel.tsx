// A run's held-out evaluation: per set the step-0 and latest bits/char (perplexity here, not in
// a chart), the forgetting line of the retain sets, budget warnings, and the generation samples
// of a chosen step beside step 0's.

import { useState } from "preact/hooks";
import { qs } from "../../api/client";
import { useApi, usePoll } from "../../api/usePoll";
import type { EvalSetInfo, RunEvent, Samples } from "../../api/types";
import { CHARACTER_DEFINITION, CHARACTER_UNIT } from "../../api/contract";
import { change, changeText, forgettingText, loadSetInfo, setKey, setNames } from "../../lib/evalsets";
import { int, num } from "../../lib/format";
import type { Store } from "../../lib/metrics";

/** The number of evaluations seen so far: what makes the panel re-read samples and warnings. */
function evalCount(store: Store): number {
  return store.eval_loss?.step.length ?? 0;
}

export function EvalPanel({ runId, store, events }: { runId: string; store: Store; events: number }) {
  const [sets, setSets] = useState<EvalSetInfo[]>([]);
  const count = evalCount(store) + events;
  // Each new evaluation (or sample, or warning) may bring sets and warnings: read them again.
  usePoll(
    `eval-sets-${runId}`,
    async (signal) => {
      const r = await loadSetInfo(runId);
      if (!signal.aborted) setSets(r.sets);
    },
    { refresh: count },
  );
  const warnings = useApi<RunEvent[]>(`/runs/${encodeURIComponent(runId)}/events${qs({ kind: "warning", limit: 20 })}`, { refresh: count }).data ?? [];

  const names = setNames(store);
  if (!names.length && !sets.length) return null;
  const info = (n: string) => sets.find((s) => s.name === n);
  const retain = names.filter((n) => info(n)?.role === "retain");
  return (
    <section class="card" aria-labelledby="eval-h" data-testid="eval-panel">
      <div class="section-head">
        <h2 id="eval-h">Held-out evaluation</h2>
        <span class="muted small">bits per character: comparable across tokenizers</span>
      </div>
      {warnings.map((w) => (
        <div key={w.seq} class="banner banner-queued" role="status" data-testid="eval-warning">
          {String(w.data.message ?? "")}
        </div>
      ))}
      {retain.map((n) => {
        const text = forgettingText(n, change(store[setKey(n, "bits_per_char")]));
        return text ? (
          <p key={n} class="forgetting" data-testid="forgetting" data-set={n}>
            <strong>Forgetting:</strong> {text}
          </p>
        ) : null;
      })}
      <div class="table-wrap">
        <table class="table" data-testid="eval-table">
          <thead>
            <tr>
              <th>Set</th>
              <th>Role</th>
              <th class="num">Step 0 bits/char</th>
              <th class="num">Latest bits/char</th>
              <th class="num">Change</th>
              <th class="num">Bits/byte</th>
              <th class="num">Loss</th>
              <th class="num">Perplexity</th>
              <th class="num" title={CHARACTER_DEFINITION}>
                Scored {CHARACTER_UNIT}
              </th>
              <th class="num">Documents</th>
              <th class="num">Tokens</th>
            </tr>
          </thead>
          <tbody>
            {names.map((n) => {
              const c = change(store[setKey(n, "bits_per_char")]);
              const last = (what: "loss" | "perplexity" | "bits_per_byte") => {
                const s = store[setKey(n, what)];
                return s?.value.length ? s.value[s.value.length - 1] : null;
              };
              const i = info(n);
              return (
                <tr key={n} data-set={n}>
                  <td class="mono">{n}</td>
                  <td>{i?.role ?? "–"}</td>
                  <td class="num">{c ? `${num(c.first, 4)} (step ${c.firstStep})` : "–"}</td>
                  <td class="num">{c ? `${num(c.last, 4)} (step ${c.lastStep})` : "–"}</td>
                  <td class="num" data-testid="eval-change">
                    {changeText(c)}
                  </td>
                  <td class="num">{num(last("bits_per_byte"), 4)}</td>
                  <td class="num">{num(last("loss"), 4)}</td>
                  <td class="num">{num(last("perplexity"), 4)}</td>
                  <td
                    class="num"
                    data-testid="eval-characters"
                    title={i && i.exact === false ? "decoded from packed blocks: approximate" : i?.truncated ? "a prefix of the set (its budget)" : undefined}
                  >
                    {int(i?.characters)}
                    {i && i.exact === false ? "≈" : ""}
                  </td>
                  <td class="num" data-testid="eval-documents">
                    {int(i?.documents)}
                  </td>
                  <td class="num">{int(i?.tokens)}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      <SamplesPanel runId={runId} count={count} />
    </section>
  );
}

/** Pick a step; every prompt's continuation at that step beside its step-0 one. */
function SamplesPanel({ runId, count }: { runId: string; count: number }) {
  const data = useApi<Samples>(`/runs/${encodeURIComponent(runId)}/samples`, { refresh: count }).data;
  const [picked, setPicked] = useState<number | null>(null);
  if (!data?.steps.length) return null;
  const first = data.steps[0];
  const step = picked !== null && data.steps.includes(picked) ? picked : data.steps[data.steps.length - 1];
  const at = (s: number) => data.samples.filter((x) => x.step === s);
  const keyOf = (x: { set: string; prompt: string; mode: string }) => `${x.set}\u0000${x.prompt}\u0000${x.mode}`;
  const base = new Map(at(first).map((x) => [keyOf(x), x.text]));
  const rows = at(step);
  return (
    <div class="samples" data-testid="samples">
      <div class="section-head">
        <h3>Samples</h3>
        <label class="small">
          step{" "}
          <select data-testid="samples-step" value={String(step)} onChange={(e) => setPicked(Number((e.target as HTMLSelectElement).value))}>
            {data.steps.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
      </div>
      <table class="table samples-table">
        <thead>
          <tr>
            <th>Prompt</th>
            <th>Mode</th>
            {step !== first ? <th>Step {first}</th> : null}
            <th>Step {step}</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((x) => (
            <tr key={keyOf(x)} data-set={x.set} data-mode={x.mode}>
              <td>
                <span class="muted small mono">{x.set}</span> {x.prompt}
              </td>
              <td class="small">{x.mode}</td>
              {/* One step's sample appears once: no baseline column while the step is the baseline. */}
              {step !== first ? (
                <td class="sample-text" data-testid="sample-base">
                  {base.get(keyOf(x)) ?? "–"}
                </td>
              ) : null}
              <td class="sample-text" data-testid="sample-text">
                {x.text}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
