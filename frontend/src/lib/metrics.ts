// Metric series for one run: loaded from GET /metrics, then extended by live `metric` events.

import { api, qs } from "../api/client";
import { EVAL_METRICS } from "../api/contract";
import type { Metrics, RunEvent } from "../api/types";

export const LOG_KEYS = ["loss", "learning_rate", "grad_norm", "tokens_per_second"] as const;
export const EVAL_KEYS = ["eval_loss", "perplexity"] as const;
export const ALL_KEYS = [...LOG_KEYS, ...EVAL_KEYS];

export interface SeriesData {
  step: number[];
  tokens: (number | null)[];
  value: number[];
  attempt: number;
}

export type Store = Record<string, SeriesData>;

/** eval_<set>_<what>: the held-out sets' metrics (their names are only known from the data). */
export const SET_KEY = new RegExp(`^eval_.+_(${EVAL_METRICS.join("|")})$`);

/** Which keys GET /metrics returns: the fixed ones plus every set's (not eval_runtime, epoch...). */
export function wantedKeys(all: string[]): string[] {
  return [...ALL_KEYS, ...all.filter((k) => SET_KEY.test(k))];
}

export function fromApi(m: Metrics, attempt: number): Store {
  const store: Store = {};
  for (const [key, s] of Object.entries(m.series)) {
    store[key] = {
      step: s.step.slice(),
      tokens: s.tokens_seen ? s.tokens_seen.slice() : s.step.map(() => null),
      value: s.value.slice(),
      attempt,
    };
  }
  return store;
}

/**
 * Adds one event's values. A repeat (same attempt, step not past the end) is dropped; a new
 * attempt that restarts from an earlier checkpoint replaces the points it re-trains.
 * Returns whether anything changed.
 */
export function addEvent(store: Store, ev: RunEvent): boolean {
  // An eval event also carries every held-out set's eval_<set>_<what> (lib/evalsets.ts).
  const keys: readonly string[] | null = ev.kind === "log" ? LOG_KEYS : ev.kind === "eval" ? [...EVAL_KEYS, ...Object.keys(ev.data).filter((k) => SET_KEY.test(k))] : null;
  const step = ev.step;
  if (!keys || step === null) return false;
  const tokens = typeof ev.data.tokens_seen === "number" ? ev.data.tokens_seen : null;
  let changed = false;
  for (const key of keys) {
    const v = ev.data[key];
    if (typeof v !== "number") continue;
    const s = (store[key] ??= { step: [], tokens: [], value: [], attempt: ev.attempt });
    const last = s.step.length ? s.step[s.step.length - 1] : -Infinity;
    if (step <= last) {
      if (ev.attempt <= s.attempt) continue;
      const keep = s.step.findIndex((st) => st >= step);
      s.step.length = s.tokens.length = s.value.length = keep < 0 ? s.step.length : keep;
    }
    s.attempt = Math.max(s.attempt, ev.attempt);
    s.step.push(step);
    s.tokens.push(tokens);
    s.value.push(v);
    changed = true;
  }
  return changed;
}

/** Tokens seen at each step, filled from the train-loss series where a point lacks it (evals). */
export function tokensAxis(store: Store, s: SeriesData): (number | null)[] {
  const ref = store.loss;
  return s.step.map((step, i) => {
    if (s.tokens[i] !== null && s.tokens[i] !== undefined) return s.tokens[i];
    if (step === 0) return 0; // the step-0 evaluation: before any token was trained on
    if (!ref?.step.length) return null;
    // last train point at or before this step (binary search: steps rise)
    let lo = 0;
    let hi = ref.step.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (ref.step[mid] <= step) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (found < 0) return null;
    const t = ref.tokens[found];
    if (t === null) return null;
    // scale by steps, since tokens per step are constant within a run
    return ref.step[found] > 0 ? (t * step) / ref.step[found] : t;
  });
}

/** A run's stored series: the fixed keys, then (when the run has held-out sets) theirs too. */
export async function loadStore(runId: string, attempt: number): Promise<Store> {
  return (await loadRunMetrics(runId, attempt)).store;
}

/** The chart store and where each resumed attempt started (the charts mark those steps). */
export async function loadRunMetrics(runId: string, attempt: number): Promise<{ store: Store; attempts: NonNullable<Metrics["attempts"]>; stages: NonNullable<Metrics["stages"]> }> {
  const base = `/runs/${encodeURIComponent(runId)}/metrics`;
  let m = await api<Metrics>(`${base}${qs({ keys: ALL_KEYS.join(","), max_points: 2000 })}`);
  const more = wantedKeys(m.keys);
  if (more.length > ALL_KEYS.length) m = await api<Metrics>(`${base}${qs({ keys: more.join(","), max_points: 2000 })}`);
  return { store: fromApi(m, attempt), attempts: m.attempts ?? [], stages: m.stages ?? [] };
}
