// Metric series for one run: loaded from GET /metrics, then extended by live `metric` events.

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
  const keys = ev.kind === "log" ? LOG_KEYS : ev.kind === "eval" ? EVAL_KEYS : null;
  if (!keys) return false;
  const tokens = typeof ev.data.tokens_seen === "number" ? ev.data.tokens_seen : null;
  let changed = false;
  for (const key of keys) {
    const v = ev.data[key];
    if (typeof v !== "number") continue;
    const s = (store[key] ??= { step: [], tokens: [], value: [], attempt: ev.attempt });
    const last = s.step.length ? s.step[s.step.length - 1] : -Infinity;
    if (ev.step <= last) {
      if (ev.attempt <= s.attempt) continue;
      const keep = s.step.findIndex((st) => st >= ev.step);
      s.step.length = s.tokens.length = s.value.length = keep < 0 ? s.step.length : keep;
    }
    s.attempt = Math.max(s.attempt, ev.attempt);
    s.step.push(ev.step);
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
    if (!ref || !ref.step.length) return null;
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
