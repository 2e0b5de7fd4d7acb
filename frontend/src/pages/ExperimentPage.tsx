// One experiment's verdict (#/experiments/<id>, a shareable URL): the table, the winner under
// the forgetting cap, target vs retain bits/char with the Pareto front, every run's target curve
// over tokens seen, the rungs of early stopping, the samples side by side and each run's stored
// benchmark scores (its last checkpoint's, else the latest scored one's, named), with a form that
// scores every run on a task. Every number is the server's (GET /experiments/{id}/verdict, read from the stored metrics); re-read every 3 s
// while a run is going.

import { useEffect, useState } from "preact/hooks";
import { apiText, post, saveText } from "../api/client";
import { POLL, useApi } from "../api/usePoll";
import { Chart, type Line } from "../components/Chart";
import { StatusBadge } from "../components/StatusBadge";
import type { RunStatus } from "../api/types";
import { compact, duration, num } from "../lib/format";
import { signed } from "../lib/evalsets";
import { axisLabel, shortValue, type Verdict, type VerdictRow } from "../lib/experiments";
import { useMe, whyNot } from "../lib/me";
import { runHref } from "../lib/router";
import { ScoreAll } from "./experiment/ScoreAll";

const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777"];
const DASH = "–";
/** Bits per character as the exports and the stop reasons write them: 4 decimals. */
const bpc = (v: number | null | undefined) => (v === null || v === undefined ? DASH : v.toFixed(4));

export function ExperimentPage({ id }: { id: string }) {
  const [running, setRunning] = useState(true);
  const {
    data: v,
    error: readError,
    reload,
  } = useApi<Verdict>(`/experiments/${encodeURIComponent(id)}/verdict`, {
    every: running ? POLL.idle : null,
  });
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const me = useMe();
  useEffect(() => {
    if (v) setRunning(v.experiment.status === "running");
  }, [v?.experiment.status]);

  const act = async (verb: "cancel" | "resume" | "launch") => {
    setBusy(true);
    try {
      await post(`/experiments/${encodeURIComponent(id)}/${verb}`);
      setRunning(true);
      reload();
    } catch (e) {
      setError(String(e));
    } finally {
      setBusy(false);
    }
  };

  if (!v)
    return (
      <section class="page">
        {error || readError ? (
          <p class="error" role="alert">
            {error || readError}
          </p>
        ) : (
          <p class="muted">Loading…</p>
        )}
      </section>
    );

  const color = (rid: string) => PALETTE[v.rows.findIndex((r) => r.run_id === rid) % PALETTE.length];
  const label = (r: VerdictRow) => v.axes.map((a) => shortValue(r.values[a])).join(" · ") || r.name || r.run_id;
  const status = v.experiment.status;
  const refused = whyNot(me, v.experiment.owner, "experiment");
  return (
    <section class="page experiment-page">
      <div class="page-head">
        <h1>{v.experiment.name}</h1>
        <span class="badge" data-testid="experiment-status" data-status={status}>
          {status}
        </span>
        <div class="spacer" />
        {status === "draft" ? (
          <button type="button" class="btn btn-primary" disabled={busy || !!refused} title={refused ?? undefined} onClick={() => act("launch")}>
            Launch
          </button>
        ) : null}
        {status === "running" ? (
          <button type="button" class="btn" disabled={busy || !!refused} title={refused ?? undefined} onClick={() => act("cancel")}>
            Cancel all
          </button>
        ) : null}
        {status === "incomplete" ? (
          <button type="button" class="btn" disabled={busy || !!refused} title={refused ?? undefined} onClick={() => act("resume")}>
            Resume what did not finish
          </button>
        ) : null}
        <Exports id={id} />
      </div>
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : null}
      <p class="muted small" data-testid="experiment-setup">
        Target <strong>{v.target}</strong>; retain {v.retain.join(", ") || "none"}; forgetting cap +{v.forgetting_cap} bits/char over step 0
        {v.spec.budget?.steps ? `; ${v.spec.budget.steps} steps per run` : v.spec.budget?.tokens ? `; ${compact(v.spec.budget.tokens)} tokens per run` : ""}
        {v.spec.early_stopping ? `; early stopping keeps ${v.spec.early_stopping.keep} at each rung` : ""}.
      </p>
      {v.warnings.map((w) => (
        <div key={w} class="banner banner-failed" role="alert" data-testid="verdict-text-warning">
          Not comparable: {w}
        </div>
      ))}
      <section class="card" data-testid="verdict-winner">
        <div class="section-head">
          <h2>Winner</h2>
          <span class="muted small">lowest {v.target} bits/char among finished runs within the cap</span>
        </div>
        {v.winner ? (
          <p>
            <span class="swatch" style={{ background: color(v.winner.run_id) }} />{" "}
            <a href={runHref(v.winner.run_id)} data-testid="winner-run" data-run={v.winner.run_id}>
              {label(v.rows.find((r) => r.run_id === v.winner!.run_id)!)}
            </a>
            : {v.target} <strong data-testid="winner-bpc">{bpc(v.winner.target_bits_per_char)}</strong> bits/char
            {v.winner.runner_up && v.winner.margin !== null ? (
              <span data-testid="winner-margin">
                , {bpc(v.winner.margin)} better than the runner-up (<a href={runHref(v.winner.runner_up)}>{label(v.rows.find((r) => r.run_id === v.winner!.runner_up)!)}</a>)
              </span>
            ) : (
              <span> (the only finished run within the cap)</span>
            )}
          </p>
        ) : (
          <p data-testid="no-winner">{v.no_winner}</p>
        )}
      </section>
      <VerdictTable v={v} color={color} />
      <ScoreAll v={v} onScored={reload} />
      <section class="card">
        <div class="section-head">
          <h2>Charts</h2>
        </div>
        <div class="charts">
          {v.retain.map((name) => (
            <Chart
              key={name}
              testId={`verdict-pareto-${name}`}
              title={`${v.target} vs ${name} bits/char at the end (Pareto front dashed)`}
              xLabel={`${v.target} bits/char`}
              lines={paretoLines(v, name, color, label)}
            />
          ))}
          <Chart
            testId="verdict-curves"
            title={`${v.target} bits/char over tokens seen`}
            xLabel="tokens seen"
            lines={v.rows.map((r) => ({ label: label(r), color: color(r.run_id), x: r.curve.tokens_seen, y: r.curve.value, points: true }))}
          />
        </div>
      </section>
      {v.rungs.length ? <Rungs v={v} label={label} /> : null}
      <Samples v={v} label={label} />
    </section>
  );
}

function paretoLines(v: Verdict, retain: string, color: (id: string) => string, label: (r: VerdictRow) => string): Line[] {
  const done = v.rows.filter((r) => r.sets[v.target] && r.sets[retain] && r.status === "succeeded");
  const lines: Line[] = done.map((r) => ({
    label: label(r),
    color: color(r.run_id),
    x: [r.sets[v.target].end],
    y: [r.sets[retain].end],
    points: true,
  }));
  const front = done.filter((r) => (v.pareto[retain] ?? []).includes(r.run_id)).sort((a, b) => a.sets[v.target].end - b.sets[v.target].end);
  if (front.length) lines.push({ label: "Pareto front", color: "#6b7280", dash: [6, 4], x: front.map((r) => r.sets[v.target].end), y: front.map((r) => r.sets[retain].end), points: false });
  return lines;
}

function VerdictTable({ v, color }: { v: Verdict; color: (id: string) => string }) {
  return (
    <section class="card">
      <div class="section-head">
        <h2>Runs</h2>
        <span class="muted small">bits per character: step 0 → end (change); forgetting = a retain set's change</span>
      </div>
      <div class="table-wrap">
        <table class="table verdict-table" data-testid="verdict-table">
          <thead>
            <tr>
              <th>Run</th>
              {v.axes.map((a) => (
                <th key={a} title={a}>
                  {axisLabel(a)}
                </th>
              ))}
              <th>Status</th>
              <th class="num">Trainable params</th>
              <th class="num">Tokens seen</th>
              <th class="num" title="every attempt">
                Wall time
              </th>
              <th class="num" title="wall time of every attempt × processes">
                Device-hours
              </th>
              {v.sets.map((n) => (
                <th key={n} class="num" data-set={n}>
                  {n}
                  <span class="muted small"> {n === v.target ? "(target)" : v.retain.includes(n) ? "(retain)" : ""}</span>
                </th>
              ))}
              {v.retain.map((n) => (
                <th key={`f-${n}`} class="num">
                  forgetting {n}
                </th>
              ))}
              <th>Within cap</th>
              {v.benchmarks.map((b) => (
                <th key={`b-${b.task}-${b.metric}`} class="num" data-bench={`${b.task} ${b.metric}`} title="lm-evaluation-harness score on the run's last checkpoint">
                  {b.task} <span class="muted small">{b.metric}</span>
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {v.rows.map((r) => (
              <tr key={r.run_id} data-run={r.run_id} class={v.winner?.run_id === r.run_id ? "winner" : ""}>
                <td data-label="Run">
                  <span class="swatch" style={{ background: color(r.run_id) }} /> <a href={runHref(r.run_id)}>{r.run_id}</a>
                </td>
                {v.axes.map((a) => (
                  <td key={a} data-label={axisLabel(a)} data-axis={a} title={String(r.values[a])}>
                    {shortValue(r.values[a])}
                  </td>
                ))}
                <td data-label="Status">
                  {r.stopped_early ? (
                    <span data-testid="stopped-early" title={r.status_reason ?? ""}>
                      stopped at rung {r.stopped_early.rung}
                    </span>
                  ) : (
                    <StatusBadge status={r.status as RunStatus} />
                  )}
                </td>
                <td class="num" data-label="Trainable params">
                  {compact(r.trainable_params)}
                </td>
                <td class="num" data-label="Tokens seen">
                  {compact(r.tokens_seen)}
                </td>
                <td class="num" data-label="Wall time">
                  {duration(r.wall_seconds)}
                </td>
                <td class="num" data-label="Device-hours">
                  {r.device_hours === null ? DASH : num(r.device_hours, 4)}
                </td>
                {v.sets.map((n) => {
                  const f = r.sets[n];
                  return (
                    <td key={n} class="num" data-label={n} data-set={n} data-testid="verdict-bpc" data-start={f?.start} data-end={f?.end}>
                      {f ? (f.change === null ? bpc(f.start) : `${bpc(f.start)} → ${bpc(f.end)} (${signed(f.change, 4)})`) : DASH}
                    </td>
                  );
                })}
                {v.retain.map((n) => (
                  <td key={`f-${n}`} class="num" data-label={`forgetting ${n}`} data-testid="verdict-forgetting">
                    {r.forgetting[n] == null ? DASH : signed(r.forgetting[n] as number, 4)}
                  </td>
                ))}
                <td data-label="Within cap" data-testid="verdict-within-cap">
                  {r.within_cap === null ? DASH : r.within_cap ? "yes" : "no"}
                  {!r.same_text ? <span class="error small"> (other text)</span> : null}
                </td>
                {v.benchmarks.map((b) => (
                  <ScoreCell key={`b-${b.task}-${b.metric}`} row={r} task={b.task} metric={b.metric} />
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

/** A stored benchmark score, 4 decimals (the exact value in data-value); the checkpoint is named
 *  when it is not the run's last. */
function ScoreCell({ row, task, metric }: { row: VerdictRow; task: string; metric: string }) {
  const s = row.scores.find((x) => x.task === task && x.metric === metric);
  const label = `${task} ${metric}`;
  if (!s || s.value === null || s.value === undefined)
    return (
      <td class="num" data-label={label} data-testid="verdict-score" data-bench={label}>
        {DASH}
      </td>
    );
  const title = [`${s.checkpoint} (job ${s.job_id})`, s.samples != null ? `${s.samples} documents` : "", s.stderr != null ? `± ${s.stderr}` : ""].filter(Boolean).join(", ");
  return (
    <td class="num" data-label={label} data-testid="verdict-score" data-bench={label} data-value={s.value} data-checkpoint={s.checkpoint} data-final={String(s.final)} title={title}>
      {s.value.toFixed(4)}
      {s.final ? null : <span class="muted small"> @ {s.checkpoint}</span>}
    </td>
  );
}

function Rungs({ v, label }: { v: Verdict; label: (r: VerdictRow) => string }) {
  const byId = Object.fromEntries(v.rows.map((r) => [r.run_id, r]));
  return (
    <section class="card" data-testid="verdict-rungs">
      <div class="section-head">
        <h2>Early stopping</h2>
        <span class="muted small">successive halving on {v.target} bits/char: at rung k a run's k-th evaluation after step 0</span>
      </div>
      {v.rungs.map((rung) => (
        <p key={rung.rung} class="small" data-rung={rung.rung}>
          <strong>Rung {rung.rung}</strong>: keep {rung.kept}
          {rung.cutoff !== null ? `, cut-off ${bpc(rung.cutoff)}` : ""} —{" "}
          {rung.runs.map((p, i) => (
            <span key={p.run_id} class={p.stopped ? "error" : ""}>
              {i ? "; " : ""}
              {byId[p.run_id] ? label(byId[p.run_id]) : p.run_id} {bpc(p.value)} @ {p.step}
              {p.stopped ? " (stopped)" : ""}
            </span>
          ))}
        </p>
      ))}
    </section>
  );
}

function Samples({ v, label }: { v: Verdict; label: (r: VerdictRow) => string }) {
  const prompts = v.samples.prompts.filter((p) => p.mode === "greedy");
  if (!prompts.length) return null;
  return (
    <section class="card">
      <div class="section-head">
        <h2>Samples</h2>
        <span class="muted small">greedy continuation at each run's last evaluation</span>
      </div>
      <div class="table-wrap">
        <table class="table samples-table" data-testid="verdict-samples">
          <thead>
            <tr>
              <th>Prompt</th>
              {v.rows.map((r) => (
                <th key={r.run_id}>
                  {label(r)}
                  <div class="muted small">step {v.samples.steps[r.run_id] ?? DASH}</div>
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {prompts.map((p) => (
              <tr key={`${p.set}:${p.prompt}`}>
                <td>
                  <span class="muted small mono">{p.set}</span> {p.prompt}
                </td>
                {v.rows.map((r) => (
                  <td key={r.run_id} class="sample-text" data-run={r.run_id}>
                    {p.texts[r.run_id] ?? DASH}
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

/** Markdown, CSV and JSON: fetched with the token, saved as a file. */
function Exports({ id }: { id: string }) {
  const save = async (format: "md" | "csv" | "json") => {
    saveText(await apiText(`/experiments/${encodeURIComponent(id)}/verdict/export?format=${format}`), `verdict-${id}.${format}`);
  };
  return (
    <span class="exports">
      {(["md", "csv", "json"] as const).map((f) => (
        <button key={f} type="button" class="btn btn-small" data-testid={`export-${f}`} onClick={() => save(f)}>
          {f === "md" ? "Markdown" : f.toUpperCase()}
        </button>
      ))}
    </span>
  );
}
