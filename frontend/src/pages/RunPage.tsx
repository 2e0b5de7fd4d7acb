// One run, live: status, progress, charts, log tail, checkpoints, config.

import { useEffect, useState } from "preact/hooks";
import { api, post, qs, saveText, tokenUrl } from "../api/client";
import { WORKER_STATUSES } from "../api/contract";
import { ACTIVE_STATUSES, type Checkpoint, type Job, type LogChunk, type Run, type RunEvent } from "../api/types";
import { Chart, type Line, type Mark } from "../components/Chart";
import { ChartControls, type ChartOpts } from "../components/ChartControls";
import { AttemptLog, WaitingReason } from "../components/Attempts";
import { useConfirm } from "../components/Confirm";
import { TryIt } from "../components/TryIt";
import { CopyButton } from "../components/CopyButton";
import { EvalPanel } from "../components/EvalPanel";
import { LiveDot } from "../components/LiveDot";
import { LogViewer } from "../components/LogViewer";
import { Phase } from "../components/Phase";
import { Progress } from "../components/Progress";
import { canCancel, canDelete, canResume, canResumeFrom, useRunActions } from "../components/RunActions";
import { useMe, whyNot, whyNotLaunch } from "../lib/me";
import { RunNotes } from "../components/RunNotes";
import { StatusBadge } from "../components/StatusBadge";
import { bytes, compact, dateTime, duration, int, num, remaining, totalSeconds } from "../lib/format";
import { setKey, setNames } from "../lib/evalsets";
import { tokensAxis, type Store } from "../lib/metrics";
import { navigate } from "../lib/router";
import { ema } from "../lib/smooth";
import { useNow } from "../lib/useNow";
import { LogBuffer } from "../lib/logbuffer";
import { useRunLive, type RunLive } from "../lib/useRunLive";

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

type EvalMetric = "bits_per_char" | "loss";

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
      lines: [
        line("loss", "loss", C.raw, { width: 1 }),
        { ...line("loss", `smoothed (${o.smoothing.toFixed(2)})`, C.smooth, { width: 2 }), y: ema(y("loss"), o.smoothing) },
      ],
    },
    evalChart(store, o, evalMetric),
    { id: "lr", title: "Learning rate", lines: [line("learning_rate", "learning rate", C.lr)] },
    { id: "grad", title: "Gradient norm", lines: [line("grad_norm", "grad norm", C.grad)] },
    { id: "tps", title: "Tokens per second", lines: [line("tokens_per_second", "tokens/s", C.tps)] },
  ];
}

export function RunPage({ id }: { id: string }) {
  const live = useRunLive(id);
  const { run } = live;
  const now = useNow();
  const [opts, setOpts] = useState<ChartOpts>({ x: "step", logY: false, smoothing: 0.6 });
  const [evalMetric, setEvalMetric] = useState<EvalMetric>("bits_per_char");
  const actions = useRunActions(live.setRun, () => navigate("/runs"));
  const me = useMe();

  if (live.error && !run) {
    return (
      <section class="page">
        <p class="error" role="alert">
          {live.error}
        </p>
        <a href="#/runs">Back to runs</a>
      </section>
    );
  }
  if (!run) return <p class="page muted">Loading run {id}…</p>;

  const active = ACTIVE_STATUSES.has(run.status);
  // What this user may not do to the run, and why (the API refuses it anyway).
  const denied = whyNot(me, run.owner);
  const noLaunch = whyNotLaunch(me);
  // Where each resumed attempt started, on the chart's own x axis.
  const marks: Mark[] = live.attemptStarts.flatMap((a) => {
    const x = opts.x === "step" ? a.step : a.tokens_seen;
    return x === null ? [] : [{ x, label: `attempt ${a.attempt}` }];
  });
  const xLabel = opts.x === "step" ? "step" : "tokens seen";

  return (
    <section class="page run-page" data-run-id={run.id}>
      <div class="page-head">
        <a href="#/runs" class="muted">
          Runs
        </a>
        <span class="muted">/</span>
        <h1 class="run-title">{run.name || run.id}</h1>
        <StatusBadge status={run.status} />
        {ACTIVE_STATUSES.has(run.status) ? <LiveDot state={live.live} /> : null}
        <div class="spacer" />
        {run.owner ? (
          <span class="muted small" data-testid="run-owner">
            owner: {run.owner}
          </span>
        ) : null}
        {canCancel(run) ? (
          <button type="button" class="btn btn-danger" disabled={!!denied} title={denied ?? undefined} onClick={() => actions.cancel(run)}>
            Cancel
          </button>
        ) : null}
        {canResume(run, live.checkpoints) ? (
          // The API refuses a resume without a checkpoint: offered only when one is on disk.
          <button type="button" class="btn" disabled={!!denied} title={denied ?? undefined} onClick={() => actions.resume(run, "last", live.checkpoints)}>
            Resume
          </button>
        ) : null}
        <button type="button" class="btn" disabled={!!noLaunch} title={noLaunch ?? undefined} onClick={() => actions.clone(run)}>
          Clone
        </button>
        <a class="btn" href={`#/launch?from=${encodeURIComponent(run.id)}`}>
          Edit &amp; relaunch
        </a>
        {canDelete(run) ? (
          <button type="button" class="btn btn-ghost" disabled={!!denied} title={denied ?? undefined} onClick={() => actions.remove(run)}>
            Delete
          </button>
        ) : null}
      </div>
      {denied ? (
        <p class="muted small" data-testid="run-actions-reason">
          {denied}
        </p>
      ) : null}

      <StatusBanner run={run} now={now} />
      <AttemptLog run={run} />

      <div class="stats card">
        <Stat label="Progress">
          <Progress step={run.step} max={run.max_steps} eta={remaining(run.eta_until, run.eta_seconds, now)} active={active} />
          <Phase run={run} now={now} />
        </Stat>
        <Stat label="Loss">{num(run.loss, 4)}</Stat>
        <Stat label="Eval loss">{num(run.eval_loss, 4)}</Stat>
        <Stat label="Perplexity">{num(run.perplexity, 4)}</Stat>
        <Stat label="Tokens/s">{compact(run.tokens_per_second)}</Stat>
        <Stat label="Tokens seen">{compact(run.tokens_seen)}</Stat>
        <Stat label="Method">{run.method === "lora" ? "LoRA" : "full"}</Stat>
        <Stat label="Model">{run.model}</Stat>
        <Stat label="Attempt">{run.attempt}</Stat>
        <Stat label="Worker">{run.worker ?? "–"}</Stat>
        <Stat label="Started">{dateTime(run.first_started_at ?? run.started_at)}</Stat>
        <Stat label="Duration">{duration(totalSeconds(run, now))}</Stat>
      </div>

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
        {Object.keys(live.metrics).length === 0 ? (
          <p class="muted charts-empty" data-testid="charts-empty">
            No metrics yet: the first point arrives after {String(run.config.training?.logging_steps ?? "?")} steps
            {active ? "" : ", and this run reported none"}.
          </p>
        ) : null}
        <div class="charts" hidden={Object.keys(live.metrics).length === 0}>
          {charts(live.metrics, opts, evalMetric).map((c) => (
            <Chart key={c.id} testId={`chart-${c.id}`} title={c.title} lines={c.lines} xLabel={xLabel} logY={opts.logY} y2Label={c.y2Label} syncKey={`run-${run.id}`} marks={marks} xEnd={c.xEnd} />
          ))}
        </div>
      </section>

      <EvalPanel runId={run.id} store={live.metrics} events={live.evalEvents + (ACTIVE_STATUSES.has(run.status) ? 0 : 1)} />

      <LogSection run={run} live={live} />

      <Checkpoints run={run} checkpoints={live.checkpoints} onResume={(name) => actions.resume(run, name, live.checkpoints)} />
      {live.checkpoints ? <TryIt runId={run.id} checkpoints={live.checkpoints} /> : null}
      <DataMix runId={run.id} started={run.step != null} version={live.version} />

      <ConfigPanel run={run} />
      <RunNotes run={run} onSaved={live.setRun} />
      {actions.dialog}
    </section>
  );
}

/** The live tail of the current attempt, or (chosen from a menu) the stored log of an earlier one. */
function LogSection({ run, live }: { run: Run; live: RunLive }) {
  const [picked, setPicked] = useState<number | null>(null);
  const [older, setOlder] = useState<string[] | null>(null);
  useEffect(() => {
    setOlder(null);
    if (picked === null) return;
    let alive = true;
    api<LogChunk>(`/runs/${run.id}/logs${qs({ tail: 5000, attempt: picked })}`)
      .then((c) => {
        const b = new LogBuffer(picked);
        b.reset(c.offset, c.text, c.next_offset);
        if (alive) setOlder(b.view());
      })
      .catch((err) => alive && setOlder([`could not load attempt ${picked}: ${err}`]));
    return () => {
      alive = false;
    };
  }, [run.id, picked]);
  const attempt = picked ?? live.logs?.attempt ?? run.attempt;
  const lines = picked === null ? (live.logs?.view() ?? []) : (older ?? []);
  return (
    <section class="card" aria-labelledby="logs-h">
      <div class="section-head">
        <h2 id="logs-h">Log</h2>
        <span class="muted small">
          attempt {attempt}
          {picked === null && ACTIVE_STATUSES.has(run.status) ? <span data-testid="log-live"> · live</span> : ""}
        </span>
        {run.attempt > 1 ? (
          <label class="small">
            <span class="sr-only">Show the log of attempt</span>
            <select
              value={picked === null ? "" : String(picked)}
              onChange={(e) => {
                const v = (e.target as HTMLSelectElement).value;
                setPicked(v === "" ? null : Number(v));
              }}
            >
              <option value="">{ACTIVE_STATUSES.has(run.status) ? "latest (live)" : "latest"}</option>
              {Array.from({ length: run.attempt }, (_, i) => i + 1).map((a) => (
                <option key={a} value={a}>
                  attempt {a}
                </option>
              ))}
            </select>
          </label>
        ) : null}
        <div class="spacer" />
        <button type="button" class="btn btn-small" onClick={() => downloadLog(run, attempt)}>
          Download log
        </button>
      </div>
      <LogViewer
        key={picked ?? "live"}
        lines={lines}
        header={
          picked === null && live.logs && live.logs.start > 0 ? (
            <button type="button" class="btn btn-small load-earlier" onClick={live.loadEarlierLogs}>
              Load earlier lines
            </button>
          ) : null
        }
      />
    </section>
  );
}

/** The whole log of one attempt as a .log file, fetched in byte pages (the API answers JSON). */
async function downloadLog(run: Run, attempt: number): Promise<void> {
  const parts: string[] = [];
  let offset = 0;
  for (;;) {
    const c = await api<LogChunk>(`/runs/${run.id}/logs${qs({ offset, limit: 4 * 1024 * 1024, attempt })}`);
    parts.push(c.text);
    if (!c.text || c.next_offset >= c.size || c.next_offset <= offset) break;
    offset = c.next_offset;
  }
  saveText(parts.join(""), `${run.id}-attempt-${attempt}.log`);
}

function Stat({ label, children }: { label: string; children: preact.ComponentChildren }) {
  return (
    <div class="stat">
      <div class="stat-label">{label}</div>
      <div class="stat-value">{children}</div>
    </div>
  );
}

/** The reason the server gave, prominent; nothing is shown for states that need no explanation. */
function StatusBanner({ run, now }: { run: Run; now: number }) {
  if (run.status === "failed")
    return (
      <div class="banner banner-failed" role="alert" data-testid="failure-banner">
        <strong>Run failed.</strong> {run.status_reason || "The worker reported no reason; see the log below."}
      </div>
    );
  if (run.status === "cancelling")
    return (
      <div class="banner banner-cancelling" role="status">
        <strong>Cancelling…</strong> the worker is stopping the training processes.
      </div>
    );
  if (run.status === "cancelled")
    return (
      <div class="banner banner-cancelled" role="status">
        <strong>Cancelled.</strong> {run.status_reason ?? ""}
      </div>
    );
  // A Slurm queue's run says where its job is: pending with Slurm's reason, or on its nodes.
  if ((run.status === "starting" || run.status === "running") && run.status_reason?.startsWith("Slurm job"))
    return (
      <div class="banner banner-queued" role="status" data-testid="scheduler-banner">
        {run.status_reason}
      </div>
    );
  if (run.status === "queued") return <WaitingReason run={run} />;
  // A worker-held run reports at least every second: silence is shown as soon as it is late,
  // long before the run is judged lost (the server's clock: last_seen_at is its own).
  const silent = silenceSeconds(run, now);
  if (silent !== null)
    return (
      <div class="banner banner-cancelling" role="status" data-testid="silence-banner">
        No word from {run.worker || "the worker"} for {Math.round(silent)} s
        {run.lost_after_seconds ? ` (the run is judged lost after ${Math.round(run.lost_after_seconds)} s)` : ""}.
      </div>
    );
  return null;
}

/** Seconds since the worker's last word about a run it holds, once it is late (else null). */
export function silenceSeconds(run: Run, now: number): number | null {
  if (!WORKER_STATUSES.has(run.status) || !run.last_seen_at) return null;
  const silent = (now - Date.parse(run.last_seen_at)) / 1000;
  return silent >= SILENCE_SHOWN_SECONDS ? silent : null;
}

/** A quiet run's keep-alive comes every second and a heartbeat every few: ten is late. */
const SILENCE_SHOWN_SECONDS = 10;

interface SourceSummary {
  name: string;
  weight: number;
  files: number;
  documents: number;
  tokens: number | null;
  blocks: number | null;
}

/** The data the run trains on, per source, as the training script reported it at start. */
function DataMix({ runId, started, version }: { runId: string; started: boolean; version: number }) {
  const [sources, setSources] = useState<SourceSummary[] | null>(null);
  useEffect(() => {
    if (!started || sources) return;
    api<RunEvent[]>(`/runs/${runId}/events?limit=50`)
      .then((evs) => {
        const start = evs.find((e) => e.kind === "start" && Array.isArray(e.data.data_sources));
        if (start) setSources(start.data.data_sources as SourceSummary[]);
      })
      .catch(() => undefined);
  }, [runId, started, sources, version]);
  if (!sources || sources.length === 0) return null;
  const totalW = sources.reduce((a, s) => a + s.weight, 0) || 1;
  return (
    <section class="card" aria-labelledby="mix-h" data-testid="data-mix">
      <h2 id="mix-h">Data</h2>
      <table class="table">
        <thead>
          <tr>
            <th>Source</th>
            <th class="num">Weight</th>
            <th class="num">Files</th>
            <th class="num">Documents</th>
            <th class="num">Tokens</th>
            <th class="num">Blocks</th>
          </tr>
        </thead>
        <tbody>
          {sources.map((s) => (
            <tr key={s.name} data-source={s.name}>
              <td>{s.name}</td>
              <td class="num">{((s.weight / totalW) * 100).toFixed(0)} %</td>
              <td class="num">{int(s.files)}</td>
              <td class="num">{int(s.documents)}</td>
              <td class="num">{int(s.tokens)}</td>
              <td class="num">{int(s.blocks)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

/** A checkpoint's merge job as the server reports it; once done, download it or train on it. */
function MergeState({ job }: { job: Job | undefined }) {
  if (!job) return null;
  const output = job.result?.output as string | undefined;
  return (
    <div class="small merge-state" data-testid="merge-state" data-status={job.status}>
      merge <StatusBadge status={job.status} />
      {job.status_reason ? <span class="muted"> {job.status_reason}</span> : null}
      {job.status === "succeeded" && output ? (
        <>
          <div class="mono muted">{output}</div>
          <a class="btn btn-small" href={tokenUrl(`/jobs/${job.id}/download`)} download={`${job.id}.tar`}>
            Download merged model
          </a>
          <button type="button" class="btn btn-small" onClick={() => navigate(`/launch?base=${encodeURIComponent(output)}`)}>
            Use as base model
          </button>
        </>
      ) : null}
    </div>
  );
}

function Checkpoints({ run, checkpoints, onResume }: { run: Run; checkpoints: Checkpoint[] | null; onResume: (name: string) => void }) {
  const [dialog, ask] = useConfirm();
  // Merge jobs of this run, as the server tracks them (status, reason, result), newest first.
  const [merges, setMerges] = useState<Job[]>([]);
  const loadMerges = () => api<Job[]>(`/jobs?kind=merge&run_id=${run.id}`).then(setMerges).catch(() => undefined);
  useEffect(() => {
    loadMerges();
  }, [run.id]);
  const mergeLive = merges.some((j) => ACTIVE_STATUSES.has(j.status));
  useEffect(() => {
    if (!mergeLive) return;
    const t = window.setInterval(loadMerges, 1000);
    return () => window.clearInterval(t);
  }, [mergeLive, run.id]);
  const mergeOf = (name: string) => merges.find((j) => j.params.checkpoint === name);
  const resumable = canResumeFrom(run);
  const merge = (c: Checkpoint) =>
    ask({
      title: `Merge ${c.name} into a full model?`,
      body: <p>The worker merges the LoRA adapter into the base model and writes an HF model directory.</p>,
      confirmLabel: "Merge and export",
      action: async () => {
        await post<{ output: string; status: string; job_id: string }>(`/runs/${run.id}/checkpoints/${c.name}/merge`);
        await loadMerges();
      },
    });
  return (
    <section class="card" aria-labelledby="ckpt-h">
      <div class="section-head">
        <h2 id="ckpt-h">Checkpoints</h2>
      </div>
      {checkpoints === null ? (
        <p class="muted">Loading…</p>
      ) : checkpoints.length === 0 ? (
        <p class="muted">No checkpoint yet (one every {String(run.config.training?.save_steps ?? "?")} steps).</p>
      ) : (
        <table class="table" data-testid="checkpoints">
          <thead>
            <tr>
              <th>Checkpoint</th>
              <th class="num">Step</th>
              <th>Saved</th>
              <th class="num">Size</th>
              <th class="num">Eval PPL</th>
              <th>
                <span class="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {checkpoints.filter((c) => c.exists).map((c) => (
              <tr key={c.name}>
                <td class="mono">
                  {c.name}
                  {c.attempt > 1 ? <span class="muted small"> (attempt {c.attempt})</span> : null}
                </td>
                <td class="num">{int(c.step)}</td>
                <td>{dateTime(c.created_at)}</td>
                <td class="num">{bytes(c.size_bytes)}</td>
                <td class="num">{num(c.eval_perplexity, 4)}</td>
                <td class="actions">
                  {c.exists ? (
                    <a class="btn btn-small" href={tokenUrl(`/runs/${run.id}/checkpoints/${c.name}/download`)} download={`${run.id}-${c.name}.tar`}>
                      Download
                    </a>
                  ) : null}
                  {c.exists && resumable ? (
                    <button type="button" class="btn btn-small" onClick={() => onResume(c.name)}>
                      Resume from here
                    </button>
                  ) : null}
                  {c.exists && run.method === "lora" ? (
                    <button type="button" class="btn btn-small" onClick={() => merge(c)}>
                      Merge &amp; export
                    </button>
                  ) : null}
                  <MergeState job={mergeOf(c.name)} />
                </td>
              </tr>
            ))}
            {checkpoints.some((c) => !c.exists) ? (
              <tr class="folded" data-testid="deleted-checkpoints">
                <td colSpan={6}>
                  <details>
                    <summary class="muted small">{checkpoints.filter((c) => !c.exists).length} deleted by the keep limit</summary>
                    <span class="mono small muted">
                      {checkpoints
                        .filter((c) => !c.exists)
                        .map((c) => c.name)
                        .join(", ")}
                    </span>
                  </details>
                </td>
              </tr>
            ) : null}
          </tbody>
        </table>
      )}
      {dialog}
    </section>
  );
}

interface RunCommand {
  command: string;
  attempts: { attempt: number; command: string }[];
}

function ConfigPanel({ run }: { run: Run }) {
  const [cmd, setCmd] = useState<RunCommand | null>(null);
  useEffect(() => {
    api<RunCommand>(`/runs/${run.id}/command`)
      .then(setCmd)
      .catch(() => setCmd(null));
    // The worker reports the argv when it launches: fetch again when the status moves.
  }, [run.id, run.attempt, run.status]);
  // What ran, per attempt, as the worker launched it; before any launch, what will run.
  const launched = cmd?.attempts ?? [];
  const command = launched.length ? launched[launched.length - 1].command : (cmd?.command ?? null);
  return (
    <section class="card" aria-labelledby="config-h">
      <div class="section-head">
        <h2 id="config-h">Config</h2>
        <div class="spacer" />
        {command ? <CopyButton text={command} label="Copy as CLI" /> : null}
        <CopyButton text={JSON.stringify(run.config, null, 2)} label="Copy JSON" />
      </div>
      {launched.length ? (
        [...launched].reverse().map((a) => (
          <div class="attempt-command" key={a.attempt} data-testid="attempt-command" data-attempt={a.attempt}>
            <h3>Attempt {a.attempt} ran</h3>
            <pre class="command" data-testid={a.attempt === run.attempt ? "run-command" : undefined}>
              {a.command}
            </pre>
          </div>
        ))
      ) : command ? (
        <div class="attempt-command">
          <h3>Will run</h3>
          <pre class="command" data-testid="run-command">{command}</pre>
        </div>
      ) : null}
      <details>
        <summary>Full config{run.preset ? ` (from preset ${run.preset})` : ""}</summary>
        <pre class="config-json">{JSON.stringify(run.config, null, 2)}</pre>
      </details>
      <p class="muted small">
        Output: <code>{run.output_dir ?? "–"}</code>
      </p>
    </section>
  );
}
