// The one way a component reads the API: `useApi` (fetch once, or keep polling) over `usePoll`
// (run a task now and then on one timer policy). The policy: the next poll is scheduled when the
// last one has answered (never two in flight), nothing polls while the tab is hidden (it catches
// up at once when shown again), and an unmount or a new key aborts the request in flight.

import { useEffect, useRef, useState } from "preact/hooks";
import { api, isAbort } from "./client";
import type { FileEntry } from "./types";

/** How often a page re-reads what it shows: `stream` for text being written as one watches (a
 *  generation), `live` while something it shows is moving (a job, a merge, a download), `idle`
 *  for what changes now and then (workers, a queued run's reason, compared runs). */
export const POLL = { stream: 500, live: 1000, idle: 3000 } as const;

export interface PollOptions {
  /** Milliseconds between the end of one run and the start of the next; null: run once. */
  every?: number | null;
  /** False: do nothing (and abort what runs). */
  enabled?: boolean;
  /** A value whose change means "read again now" (a run's status moved): a re-read, not a reset. */
  refresh?: unknown;
}

/** Run `task` now and then every `every` ms while `enabled` and the tab is visible. `key`
 *  restarts it (aborting the run in flight); the latest `task` closure is always the one run. */
export function usePoll(key: string, task: (signal: AbortSignal) => Promise<unknown>, { every = null, enabled = true, refresh }: PollOptions = {}): () => void {
  const taskRef = useRef(task);
  taskRef.current = task;
  const kick = useRef<() => void>(() => {});
  const lastRefresh = useRef(refresh);
  useEffect(() => {
    if (Object.is(lastRefresh.current, refresh)) return;
    lastRefresh.current = refresh;
    kick.current();
  }, [refresh]);

  useEffect(() => {
    if (!enabled) return;
    const ctrl = new AbortController();
    let timer: number | undefined;
    let running = false;
    let again = false;

    const run = async () => {
      window.clearTimeout(timer);
      timer = undefined;
      if (running) {
        again = true; // a reload asked while one is in flight: run once more after it
        return;
      }
      running = true;
      try {
        await taskRef.current(ctrl.signal);
      } catch (err) {
        if (!isAbort(err)) console.error("poll failed", key, err);
      } finally {
        running = false;
      }
      if (ctrl.signal.aborted) return;
      if (again) {
        again = false;
        void run();
      } else schedule();
    };
    const schedule = () => {
      if (every === null || document.hidden || ctrl.signal.aborted) return;
      timer = window.setTimeout(run, every);
    };
    // Hidden: the pending poll is dropped; shown: read at once, then on the usual schedule.
    const onVisibility = () => {
      if (document.hidden) {
        window.clearTimeout(timer);
        timer = undefined;
      } else if (every !== null && timer === undefined && !running) void run();
    };

    kick.current = () => void run();
    document.addEventListener("visibilitychange", onVisibility);
    void run();
    return () => {
      ctrl.abort();
      window.clearTimeout(timer);
      document.removeEventListener("visibilitychange", onVisibility);
      kick.current = () => {};
    };
  }, [key, every, enabled]);

  return () => kick.current();
}

export interface ApiState<T> {
  /** The last answer (kept while a later read fails), null before the first. */
  data: T | null;
  /** Why the last read failed, null once one succeeds. */
  error: string | null;
  /** Read again now (after an action changed what is shown). */
  reload: () => void;
  /** Replace the data with what an action answered, without a read. */
  set: (data: T) => void;
}

/** GET `path` (under /api) once, or every `every` ms; null path: nothing. A new path aborts the
 *  old read and starts from no data. */
export function useApi<T>(path: string | null, opts: PollOptions = {}): ApiState<T> {
  const [state, setState] = useState<{ path: string | null; data: T | null; error: string | null }>({ path, data: null, error: null });
  const reload = usePoll(
    path ?? "",
    async (signal) => {
      if (path === null) return;
      try {
        const data = await api<T>(path, { signal });
        if (!signal.aborted) setState({ path, data, error: null });
      } catch (err) {
        if (isAbort(err) || signal.aborted) return;
        setState((s) => ({ path, data: s.path === path ? s.data : null, error: String(err) }));
      }
    },
    { ...opts, enabled: path !== null && opts.enabled !== false },
  );
  // Data of another path is never shown for this one (the read of the new path is under way).
  const current = state.path === path ? state : { data: null, error: null };
  return { data: current.data, error: current.error, reload, set: (data: T) => setState({ path, data, error: null }) };
}

/** The paths a form's pickers offer, by kind (`GET /files?kind=`), each read once; a kind whose
 *  read failed offers none. The kinds are a fixed list per component (one read each). */
export function useFiles(kinds: readonly string[]): Record<string, FileEntry[]> {
  const out: Record<string, FileEntry[]> = {};
  for (const kind of kinds) {
    // A hook per kind in a loop: fine, the list is constant for a caller (same hooks, same order).
    const { data, error } = useApi<FileEntry[]>(`/files?kind=${kind}`);
    if (data || error) out[kind] = data ?? [];
  }
  return out;
}
