// Everything the run page shows, kept current from one SSE stream (`status`, `metric`, `log`).
// Each (re)connect re-fetches run, metrics, checkpoints and any missing log bytes, so a dropped
// connection loses nothing. Mutable stores plus a frame-batched version counter keep bursts of
// events to one render per frame.

import { useEffect, useRef, useState } from "preact/hooks";
import { api, qs } from "../api/client";
import { subscribe, type SseState } from "../api/sse";
import { STATUS_RANK } from "../api/contract";
import type { Checkpoint, LogChunk, LogEvent, Metrics, Run, RunEvent } from "../api/types";
import { LogBuffer } from "./logbuffer";
import { addEvent, loadRunMetrics, type Store } from "./metrics";

export interface RunLive {
  run: Run | null;
  error: string | null;
  live: SseState;
  metrics: Store;
  /** Sample and warning events seen live (a change makes the eval panel re-read them). */
  evalEvents: number;
  /** Where each resumed attempt started (step and tokens): the charts mark these. */
  attemptStarts: AttemptStart[];
  /** Where each stage of a staged run after the first begins: the charts mark these too. */
  stageStarts: StageStart[];
  logs: LogBuffer | null;
  checkpoints: Checkpoint[] | null;
  version: number;
  setRun: (r: Run) => void;
  loadEarlierLogs: () => Promise<void>;
  reloadCheckpoints: () => void;
}

const TAIL_LINES = 1000;

export type AttemptStart = NonNullable<Metrics["attempts"]>[number];
export type StageStart = NonNullable<Metrics["stages"]>[number];

export function useRunLive(id: string): RunLive {
  const [run, setRunState] = useState<Run | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [live, setLive] = useState<SseState>("connecting");
  const [checkpoints, setCheckpoints] = useState<Checkpoint[] | null>(null);
  const [version, setVersion] = useState(0);
  const metrics = useRef<Store>({});
  const evalEvents = useRef(0);
  const starts = useRef<AttemptStart[]>([]);
  const stageStarts = useRef<StageStart[]>([]);
  const tokensPerStep = useRef<number | null>(null);
  const logs = useRef<LogBuffer | null>(null);
  const frame = useRef(0);
  const fillingLogs = useRef<Promise<void> | null>(null);
  const runRef = useRef<Run | null>(null);
  // The effect's closures, for actions taken outside it (a cancel answer, a reload button).
  const setRunRef = useRef<(r: Run) => void>(() => {});
  const reloadRef = useRef<() => void>(() => {});

  const bump = () => {
    if (frame.current) return;
    frame.current = requestAnimationFrame(() => {
      frame.current = 0;
      setVersion((v) => v + 1);
    });
  };

  useEffect(() => {
    let alive = true;
    const base = `/runs/${encodeURIComponent(id)}`;
    const setRun = (r: Run) => {
      if (!alive) return;
      const prev = runRef.current;
      // A fetch answered after newer SSE events is stale: within one attempt a status never
      // goes backwards (a resume is a new attempt), so never show an older state.
      if (prev && r.attempt === prev.attempt && STATUS_RANK[r.status] < STATUS_RANK[prev.status]) return;
      runRef.current = r;
      setRunState(r);
      if (prev && (prev.status !== r.status || prev.attempt !== r.attempt)) loadCheckpoints();
    };

    const loadRun = async () => {
      try {
        setRun(await api<Run>(base));
        setError(null);
      } catch (err) {
        if (alive) setError(String(err));
      }
    };
    const loadMetrics = async () => {
      try {
        const { store, attempts, stages } = await loadRunMetrics(id, runRef.current?.attempt ?? 1);
        if (!alive) return;
        metrics.current = store;
        starts.current = attempts;
        stageStarts.current = stages;
        bump();
      } catch {
        /* the run itself reports the error */
      }
    };
    const loadCheckpoints = async () => {
      try {
        const c = await api<Checkpoint[]>(`${base}/checkpoints`);
        if (alive) setCheckpoints(c);
      } catch {
        if (alive) setCheckpoints([]);
      }
    };
    // Fetch log bytes from the buffer's end until caught up; serialised so two fills never race.
    const fillLogs = (): Promise<void> => {
      if (fillingLogs.current) return fillingLogs.current;
      const task = (async () => {
        try {
          for (let i = 0; i < 50; i++) {
            const buf = logs.current;
            if (!buf) {
              const t = await api<LogChunk>(`${base}/logs${qs({ tail: TAIL_LINES })}`);
              const b = new LogBuffer(t.attempt);
              b.reset(t.offset, t.text, t.next_offset);
              logs.current = b;
              bump();
              return;
            }
            const c = await api<LogChunk>(`${base}/logs${qs({ offset: buf.next, limit: 262144, attempt: buf.attempt })}`);
            if (logs.current !== buf) continue;
            buf.apply(c.offset, c.text);
            buf.next = Math.max(buf.next, c.next_offset);
            bump();
            if (!c.text || c.next_offset >= c.size) return;
          }
        } catch {
          /* retried on the next event or reconnect */
        } finally {
          fillingLogs.current = null;
        }
      })();
      fillingLogs.current = task;
      return task;
    };

    const onLog = (ev: LogEvent) => {
      const buf = logs.current;
      if (!buf) return void fillLogs();
      if (ev.attempt > buf.attempt) {
        // A resume started a new attempt: its log is a new file, shown from its first byte.
        const fresh = new LogBuffer(ev.attempt);
        logs.current = fresh;
        if (fresh.apply(ev.offset, ev.text) === "gap") fillLogs();
        bump();
        return;
      }
      if (ev.attempt < buf.attempt) return;
      const r = buf.apply(ev.offset, ev.text);
      if (r === "gap") fillLogs();
      else if (r === "appended") bump();
    };
    const onMetric = (ev: RunEvent) => {
      if (ev.kind === "checkpoint" || ev.kind === "end") loadCheckpoints();
      if (ev.kind === "start" && typeof ev.data.tokens_per_step === "number") tokensPerStep.current = ev.data.tokens_per_step;
      if (ev.kind === "start" && ev.attempt > 1 && !starts.current.some((s) => s.attempt === ev.attempt)) {
        const perStep = ev.data.tokens_per_step;
        const step = ev.step ?? 0;
        const tokens = typeof perStep === "number" ? step * perStep : null;
        starts.current = [...starts.current, { attempt: ev.attempt, step, tokens_seen: tokens }];
        bump();
        return;
      }
      const at = ev.data.start;
      const index = ev.data.index;
      // A stage after the first begins (training.stages): a line at its planned first step.
      if (ev.kind === "stage" && typeof at === "number" && typeof index === "number" && index > 0 && !stageStarts.current.some((s) => s.index === index)) {
        const perStep = tokensPerStep.current;
        const stage = { index, name: String(ev.data.name ?? ""), method: String(ev.data.method ?? ""), step: at, tokens_seen: perStep ? at * perStep : null };
        stageStarts.current = [...stageStarts.current, stage];
        bump();
        return;
      }
      if (ev.kind === "sample" || ev.kind === "warning") {
        evalEvents.current += 1; // the eval panel re-reads samples and warnings
        bump();
      }
      if (addEvent(metrics.current, ev)) bump();
    };

    metrics.current = {};
    starts.current = [];
    stageStarts.current = [];
    logs.current = null;
    loadRun().then(() => {
      loadMetrics();
      loadCheckpoints();
      fillLogs();
    });
    const unsubscribe = subscribe(`${base}/stream`, {
      handlers: { status: setRun, metric: onMetric, log: onLog },
      onOpen: (first) => {
        if (first) return; // the initial loads above cover the first open
        loadRun();
        loadMetrics();
        loadCheckpoints();
        fillLogs();
      },
      onState: (s) => alive && setLive(s),
    });
    setRunRef.current = setRun;
    reloadRef.current = loadCheckpoints;
    return () => {
      alive = false;
      unsubscribe();
      cancelAnimationFrame(frame.current);
      frame.current = 0;
    };
  }, [id]);

  const loadEarlierLogs = async () => {
    const buf = logs.current;
    if (!buf || buf.start === 0) return;
    const from = Math.max(0, buf.start - 262144);
    const c = await api<LogChunk>(`/runs/${encodeURIComponent(id)}/logs${qs({ offset: from, limit: buf.start - from, attempt: buf.attempt })}`);
    // Rebuild: earlier bytes + what we had, so line splitting stays right.
    const old = buf.view().join("\n");
    const merged = new LogBuffer(buf.attempt);
    merged.reset(from, c.text + old + (buf.partial ? "" : "\n"), buf.next);
    merged.next = buf.next;
    logs.current = merged;
    setVersion((v) => v + 1);
  };

  return {
    run,
    error,
    live,
    metrics: metrics.current,
    evalEvents: evalEvents.current,
    attemptStarts: starts.current,
    stageStarts: stageStarts.current,
    logs: logs.current,
    checkpoints,
    version,
    setRun: (r) => setRunRef.current(r),
    loadEarlierLogs,
    reloadCheckpoints: () => reloadRef.current(),
  };
}
