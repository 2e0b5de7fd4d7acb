// The run's curves: training loss (raw and smoothed), held-out sets, learning rate, gradient
// norm and throughput, on one synced x axis (step or tokens) with a mark where each resumed
// attempt started.

import { useState } from "preact/hooks";
import type { Run } from "../../api/types";
import { Chart, type Line, type Mark } from "../../components/Chart";
import { ChartControls, type ChartOpts } from "../../components/ChartControls";
import { setKey, setNames } from "../../lib/evalsets";
import { tokensAxis, type Store } from "../../lib/metrics";
import { ema } from "../../lib/smooth";
import type { AttemptStart, StageStart } from "../../lib/useRunLive";

const C = { raw: "#9db7e0", smooth: "#2563eb", eval: "#dc2626", lr: "#0891b2", grad: "#ea580c", tps: "#16a34a" };

function xOf(store: Store, key: string, x: ChartOpts["x"]): (number | null)[] {
  const s = store[key];
  if (!s) return [];
  return x === "step" ? s.step : tokensAxis(store, s);
}

const SET_COLORS = ["#dc2626", "#2563eb", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777"];

/** Held-out sets: bits/char per set (comparable across tokenizers), or their per-token loss.
 *  Perplexity is exp(loss), the same line again: it stays in the table and the stats. */
function evalChart(store: Store, o: ChartOpts, metric: EvalMetric): { title: string; lines: Line[]; id: string; xEnd?: number | null } {
  const names = setNames(store);
  // Evaluations come every N steps: the axis still ends where training is (the last logged step).
  const trained = xOf(store, "loss", o.x).filter((v): v is number => v !== null);
  const xEnd = trained.length ? Math.max(...trained) : null;
  if (!names.length) {
    const s = store.eval_loss;
    return { id: "eval", xEnd, title: "Eval loss", lines: [{ label: "eval loss", color: C.eval, x: xOf(store, "eval_loss", o.x), y: s?.value ?? [], points: true }] };
  }
  return {
    id: "eval",
    xEnd,
    title: metric === "bits_per_char" ? "Held-out bits per character" : "Held-out loss (per token)",
    lines: names.map((n, i) => {
      const key = setKey(n, metric);
      return { label: n, color: SET_COLORS[i % SET_COLORS.length], x: xOf(store, key, o.x), y: store[key]?.value ?? [], points: true };
    }),
  };
}

export type EvalMetric = "bits_per_char" | "loss";

function charts(store: Store, o: ChartOpts, evalMetric: EvalMetric): { title: string; lines: Line[]; y2Label?: string; id: string; xEnd?: number | null }[] {
  const y = (k: string) => store[k]?.value ?? [];
  const line = (key: string, label: string, color: string, extra: Partial<Line> = {}): Line => ({
    label,
    color,
    x: xOf(store, key, o.x),
    y: y(key),
    ...extra,
  });
  return [
    {
      id: "loss",
      title: "Training loss",
      lines: [line("loss", "loss", C.raw, { width: 1 }), { ...line("loss", `smoothed (${o.smoothing.toFixed(2)})`, C.smooth, { width: 2 }), y: ema(y("loss"), o.smoothing) }],
    },
    evalChart(store, o, evalMetric),
    { id: "lr", title: "Learning rate", lines: [line("learning_rate", "learning rate", C.lr)] },
    { id: "grad", title: "Gradient norm", lines: [line("grad_norm", "grad norm", C.grad)] },
    { id: "tps", title: "Tokens per second", lines: [line("tokens_per_second", "tokens/s", C.tps)] },
  ];
}

export function MetricsPanel({ run, store, attemptStarts, stageStarts = [], active }: { run: Run; store: Store; attemptStarts: AttemptStart[]; stageStarts?: StageStart[]; active: boolean }) {
  const [opts, setOpts] = useState<ChartOpts>({ x: "step", logY: false, smoothing: 0.6 });
  const [evalMetric, setEvalMetric] = useState<EvalMetric>("bits_per_char");
  // Where each resumed attempt started, on the chart's own x axis.
  const marks: Mark[] = attemptStarts.flatMap((a) => {
    const x = opts.x === "step" ? a.step : a.tokens_seen;
    return x === null ? [] : [{ x, label: `attempt ${a.attempt}` }];
  });
  // Where each stage of a staged run begins (training.stages).
  for (const s of stageStarts) {
    const x = opts.x === "step" ? s.step : s.tokens_seen;
    if (x !== null) marks.push({ x, label: `stage ${s.index + 1}: ${s.name || s.method}` });
  }
  const xLabel = opts.x === "step" ? "step" : "tokens seen";
  const empty = Object.keys(store).length === 0;
  return (
    <section class="card" aria-labelledby="charts-h">
      <div class="section-head">
        <h2 id="charts-h">Metrics</h2>
        <ChartControls opts={opts} onChange={setOpts} />
        <label class="small">
          held-out{" "}
          <select data-testid="eval-metric" value={evalMetric} onChange={(e) => setEvalMetric((e.target as HTMLSelectElement).value as EvalMetric)}>
            <option value="bits_per_char">bits/char</option>
            <option value="loss">loss</option>
          </select>
        </label>
      </div>
      {empty ? (
        <p class="muted charts-empty" data-testid="charts-empty">
          No metrics yet: the first point arrives after {String(run.config.training?.logging_steps ?? "?")} steps
          {active ? "" : ", and this run reported none"}.
        </p>
      ) : null}
      <div class="charts" hidden={empty}>
        {charts(store, opts, evalMetric).map((c) => (
          <Chart key={c.id} testId={`chart-${c.id}`} title={c.title} lines={c.lines} xLabel={xLabel} logY={opts.logY} y2Label={c.y2Label} syncKey={`run-${run.id}`} marks={marks} xEnd={c.xEnd} />
        ))}
      </div>
    </section>
  );
}
