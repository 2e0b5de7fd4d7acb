// Held-out sets: their metric names (eval_<set>_<what>, cpt_contract/events.py), the step-0
// baseline and the change since, and the `start` event's description of each set.

import { api, qs } from "../api/client";
import { EVAL_METRICS, type EvalMetric } from "../api/contract";
import type { EvalSetInfo, RunEvent } from "../api/types";
import type { SeriesData, Store } from "./metrics";

export const SET_METRICS = EVAL_METRICS;
export type SetMetric = EvalMetric;
const SET_KEY = new RegExp(`^eval_(.+)_(${EVAL_METRICS.join("|")})$`);

export const setKey = (name: string, what: SetMetric): string => `eval_${name}_${what}`;

/** A metric key of one set, or null. */
export function parseSetKey(key: string): { name: string; what: SetMetric } | null {
  const m = SET_KEY.exec(key);
  return m ? { name: m[1], what: m[2] as SetMetric } : null;
}

/** The sets that report bits/char in a store, in the order their keys arrived. */
export function setNames(store: Store): string[] {
  return Object.keys(store)
    .map(parseSetKey)
    .filter((p): p is { name: string; what: SetMetric } => p !== null && p.what === "bits_per_char")
    .map((p) => p.name);
}

export interface Change {
  firstStep: number;
  first: number;
  lastStep: number;
  last: number;
  delta: number;
}

/** First (the step-0 baseline with eval_at_start) and latest value of a series. */
export function change(s: SeriesData | undefined): Change | null {
  if (!s?.value.length) return null;
  const n = s.value.length - 1;
  return { firstStep: s.step[0], first: s.value[0], lastStep: s.step[n], last: s.value[n], delta: s.value[n] - s.value[0] };
}

export function signed(v: number, digits = 3): string {
  return `${v >= 0 ? "+" : "−"}${Math.abs(v).toFixed(digits)}`;
}

/** A change for a table cell: "not evaluated since step 0" while only the baseline exists. */
export function changeText(c: Change | null): string {
  if (!c) return "–";
  return c.lastStep === c.firstStep ? `not evaluated since step ${c.firstStep}` : signed(c.delta);
}

/** "1,304 characters in 3 documents" (the text a set's numbers are over). */
export function scoredText(i: EvalSetInfo | undefined): string {
  if (!i) return "not reported";
  const approx = i.exact === false ? "≈" : "";
  return `${approx}${i.characters.toLocaleString("en-US")} characters in ${i.documents.toLocaleString("en-US")} documents`;
}

/** "en +0.020 bits/char since step 0" (null before a second evaluation). */
export function forgettingText(name: string, c: Change | null): string | null {
  if (!c || c.lastStep === c.firstStep) return null;
  return `${name} ${signed(c.delta)} bits/char since step ${c.firstStep}`;
}

/** The run's eval sets as its (latest) `start` event describes them. */
export async function loadSetInfo(runId: string): Promise<{ sets: EvalSetInfo[]; start: RunEvent | null }> {
  const starts = await api<RunEvent[]>(`/runs/${encodeURIComponent(runId)}/events${qs({ kind: "start", limit: 100 })}`);
  const start = starts.length ? starts[starts.length - 1] : null;
  const sets = (start?.data.eval_sets as EvalSetInfo[] | undefined) ?? [];
  return { sets, start };
}
