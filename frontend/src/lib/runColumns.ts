// The runs table's columns: the built-in ones, any run-config field and the last/best value of
// any metric. Which are shown (and their order) is kept in localStorage, per browser.
// Every column has a server-side sort key, so a sort holds across pages.

import type { Run } from "../api/types";
import { flatten } from "./schema";

export interface ColumnId {
  id: string;
  /** The list API's `sort` key (see backend/services/sorting.py). */
  sort: string | null;
  label: string;
  num: boolean;
}

export const BUILTIN: ColumnId[] = [
  { id: "status", sort: "status", label: "Status", num: false },
  { id: "run", sort: "name", label: "Run", num: false },
  { id: "owner", sort: "owner", label: "Owner", num: false },
  { id: "method", sort: "method", label: "Method", num: false },
  { id: "model", sort: "model", label: "Model", num: false },
  { id: "progress", sort: "step", label: "Progress", num: false },
  { id: "loss", sort: "loss", label: "Loss", num: true },
  { id: "ppl", sort: "perplexity", label: "PPL", num: true },
  { id: "tps", sort: "tokens_per_second", label: "Tok/s", num: true },
  { id: "tokens", sort: "tokens_seen", label: "Tokens seen", num: true },
  { id: "started", sort: "started_at", label: "Started", num: false },
  { id: "duration", sort: null, label: "Duration", num: true },
  { id: "note", sort: null, label: "Note", num: false },
];

export const DEFAULT_COLUMNS = ["status", "run", "owner", "method", "model", "progress", "loss", "ppl", "tps", "started", "duration"];

/** Metrics every run is likely to have, offered even before a run reported them. */
export const COMMON_METRICS = ["loss", "eval_loss", "perplexity", "grad_norm", "learning_rate", "tokens_per_second"];

const STORE_KEY = "cpt-panel-runs-columns";

export function loadColumns(): string[] {
  try {
    const v = JSON.parse(localStorage.getItem(STORE_KEY) ?? "null");
    if (Array.isArray(v) && v.every((x) => typeof x === "string") && v.length) return v;
  } catch {
    /* a broken value: start from the defaults */
  }
  return DEFAULT_COLUMNS;
}

export function saveColumns(ids: string[]): void {
  localStorage.setItem(STORE_KEY, JSON.stringify(ids));
}

/** "config.training.learning_rate" -> its column; "metric.loss.best" -> its column. */
export function columnOf(id: string): ColumnId | null {
  const builtin = BUILTIN.find((c) => c.id === id);
  if (builtin) return builtin;
  const m = /^metric\.(.+)\.(last|best)$/.exec(id);
  if (m) return { id, sort: id, label: `${m[1]} (${m[2]})`, num: true };
  const c = /^config\.([a-z_]+)\.([A-Za-z0-9_]+)$/.exec(id);
  if (c) return { id, sort: id, label: `${c[1]}.${c[2]}`, num: false };
  return null;
}

/** The value a config/metric column shows for a run; undefined: this run has none. */
export function extraValue(run: Run, id: string): unknown {
  const m = /^metric\.(.+)\.(last|best)$/.exec(id);
  if (m) return run.metrics_summary?.[m[1]]?.[m[2] as "last" | "best"] ?? undefined;
  if (id.startsWith("config.")) return flatten(run.config)[id.slice("config.".length)];
  return undefined;
}

/** The next sort after clicking a header: ascending, descending, then the default order. */
export function nextSort(current: string, key: string): string {
  if (current === key) return `-${key}`;
  if (current === `-${key}`) return "";
  return key;
}
