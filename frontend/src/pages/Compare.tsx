// Two or more runs side by side: overlaid curves (by step or tokens seen) and the config keys
// whose values differ.

import { useRef, useState } from "preact/hooks";
import { api } from "../api/client";
import { ACTIVE_STATUSES, type Run, type RunPage } from "../api/types";
import { POLL, useApi, usePoll } from "../api/usePoll";
import { Chart, type Line } from "../components/Chart";
import { ChartControls, type ChartOpts } from "../components/ChartControls";
import { StatusBadge } from "../components/StatusBadge";
import { CompareEval } from "../components/CompareEval";
import { CompareScores } from "../components/CompareScores";
import { setKey, setNames } from "../lib/evalsets";
import { loadStore, tokensAxis, type Store } from "../lib/metrics";
import { navigate, runHref } from "../lib/router";
import { flatten } from "../lib/schema";
import { ema } from "../lib/smooth";

const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777"];

interface Loaded {
  run: Run;
  store: Store;
}

const CHARTS: [string, string][] = [
  ["loss", "Training loss"],
  ["learning_rate", "Learning rate"],
  ["grad_norm", "Gradient norm"],
  ["tokens_per_second", "Tokens per second"],
];

/** Per held-out set a bits/char chart (comparable across tokenizers); eval loss only for runs
 *  without sets. Perplexity is exp(loss): it stays in the tables. */
function chartList(loaded: Loaded[]): [string, string][] {
  const sets = [...new Set(loaded.flatMap((l) => setNames(l.store)))];
  const evals: [string, string][] = sets.length ? sets.map((n) => [setKey(n, "bits_per_char"), `${n}: held-out bits per character`]) : [["eval_loss", "Eval loss"]];
  return [CHARTS[0], ...evals, ...CHARTS.slice(1)];
}

function fmt(v: unknown): string {
  if (v === undefined) return "(absent)";
  if (v === null) return "–";
  return typeof v === "string" ? v : JSON.stringify(v);
}

export function Compare({ ids }: { ids: string[] }) {
  const [loaded, setLoaded] = useState<Loaded[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [opts, setOpts] = useState<ChartOpts>({ x: "step", logY: false, smoothing: 0.6 });
  const [showAll, setShowAll] = useState(false);
  const loadedRef = useRef<Loaded[]>([]);
  loadedRef.current = loaded;

  // Read once, then again now and then while any of the runs is active (their curves grow).
  usePoll(
    ids.join(","),
    async (signal) => {
      const current = loadedRef.current;
      const same = current.map((l) => l.run.id).join(",") === ids.join(",");
      if (same && !current.some((l) => ACTIVE_STATUSES.has(l.run.status))) return;
      try {
        const out = await Promise.all(
          ids.map(async (id) => {
            const run = await api<Run>(`/runs/${encodeURIComponent(id)}`, { signal });
            return { run, store: await loadStore(id, run.attempt) };
          }),
        );
        if (signal.aborted) return;
        setLoaded(out);
        setError(null);
      } catch (err) {
        if (!signal.aborted) setError(String(err));
      }
    },
    { every: POLL.idle },
  );

  if (ids.length < 2) return <ComparePicker initial={ids} />;

  const xLabel = opts.x === "step" ? "step" : "tokens seen";
  const configs = loaded.map((l) => flatten(l.run.config));
  const keys = [...new Set(configs.flatMap((c) => Object.keys(c)))].sort();
  const differing = keys.filter((k) => new Set(configs.map((c) => JSON.stringify(c[k]))).size > 1);
  const rows = showAll ? keys : differing;

  return (
    <section class="page">
      <div class="page-head">
        <h1>Compare {ids.length} runs</h1>
        <div class="spacer" />
        <a class="btn" href="#/compare">
          Pick other runs
        </a>
      </div>
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : null}
      <div class="legend-runs">
        {loaded.map((l, i) => (
          <a key={l.run.id} href={runHref(l.run.id)} class="legend-run">
            <span class="swatch" style={{ background: PALETTE[i % PALETTE.length] }} />
            {l.run.name || l.run.id} <StatusBadge status={l.run.status} />
          </a>
        ))}
      </div>
      <section class="card">
        <div class="section-head">
          <h2>Curves</h2>
          <ChartControls opts={opts} onChange={setOpts} />
        </div>
        <div class="charts">
          {chartList(loaded).map(([key, title]) => {
            const lines: Line[] = loaded.map((l, i) => {
              const s = l.store[key];
              const y = s?.value ?? [];
              return {
                label: l.run.name || l.run.id,
                color: PALETTE[i % PALETTE.length],
                x: s ? (opts.x === "step" ? s.step : tokensAxis(l.store, s)) : [],
                y: key === "loss" ? ema(y, opts.smoothing) : y,
                points: key.startsWith("eval_"),
              };
            });
            return <Chart key={key} testId={`compare-${key}`} title={key === "loss" ? `${title} (smoothed)` : title} lines={lines} xLabel={xLabel} logY={opts.logY} syncKey="compare" />;
          })}
        </div>
      </section>
      <CompareEval loaded={loaded} />
      <CompareScores runs={loaded.map((l) => l.run)} />
      <section class="card">
        <div class="section-head">
          <h2>Config differences</h2>
          <label class="check">
            <input type="checkbox" checked={showAll} onChange={(e) => setShowAll((e.target as HTMLInputElement).checked)} /> show all keys
          </label>
        </div>
        {rows.length === 0 ? (
          <p class="muted">The configs are identical.</p>
        ) : (
          <div class="table-wrap">
            <table class="table diff" data-testid="config-diff">
              <thead>
                <tr>
                  <th>Key</th>
                  {loaded.map((l) => (
                    <th key={l.run.id}>{l.run.name || l.run.id}</th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {rows.map((k) => (
                  <tr key={k} class={differing.includes(k) ? "differs" : ""} data-key={k}>
                    <td class="mono">{k}</td>
                    {configs.map((c, i) => (
                      <td key={i} class="mono">
                        {fmt(c[k])}
                      </td>
                    ))}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
    </section>
  );
}

/** Choose runs to compare from the most recent ones. */
function ComparePicker({ initial }: { initial: string[] }) {
  const [picked, setPicked] = useState<string[]>(initial);
  const runs = useApi<RunPage>("/runs?limit=200").data?.items ?? null;
  const toggle = (id: string) => setPicked((p) => (p.includes(id) ? p.filter((x) => x !== id) : [...p, id]));
  return (
    <section class="page">
      <div class="page-head">
        <h1>Compare runs</h1>
      </div>
      <form
        class="card"
        onSubmit={(e) => {
          e.preventDefault();
          navigate(`/compare?ids=${picked.join(",")}`);
        }}
      >
        <fieldset>
          <legend>Pick two or more runs</legend>
          {runs === null ? <p class="muted">Loading…</p> : null}
          {runs?.length === 0 ? <p class="muted">No runs yet.</p> : null}
          <ul class="pick-list">
            {runs?.map((r) => (
              <li key={r.id}>
                <label class="check">
                  <input type="checkbox" checked={picked.includes(r.id)} onChange={() => toggle(r.id)} /> {r.name || r.id} <span class="muted small mono">{r.id}</span>{" "}
                  <StatusBadge status={r.status} />{" "}
                  <span class="muted small">
                    {r.method === "lora" ? "LoRA" : "full"} · {r.model}
                  </span>
                </label>
              </li>
            ))}
          </ul>
        </fieldset>
        <button type="submit" class="btn btn-primary" disabled={picked.length < 2}>
          Compare {picked.length} runs
        </button>
      </form>
    </section>
  );
}
