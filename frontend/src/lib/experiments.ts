// The experiments' shapes (generated schema.ts: backend/api/routes/experiments.py and
// verdict_models.py), the spec as the UI edits it, and small helpers.

import type * as S from "../api/schema";

export interface ExperimentSpec {
  name?: string;
  preset?: string | null;
  base?: Record<string, unknown>;
  axes?: Record<string, unknown[]>;
  combinations?: Record<string, unknown>[] | null;
  target?: string;
  retain?: string[];
  forgetting_cap?: number;
  budget?: { steps?: number | null; tokens?: number | null } | null;
  early_stopping?: { keep: number; max_rungs?: number | null } | null;
}

/** The experiment answers, with the open `spec` JSON narrowed to ExperimentSpec. */
type WithSpec<T extends { spec: unknown }> = Omit<T, "spec"> & { spec: ExperimentSpec };
export type Experiment = WithSpec<S.ExperimentPublic> & { status: "draft" | "running" | "finished" | "incomplete" };
export type ExperimentPreset = WithSpec<S.ExperimentPreset>;
export type Verdict = WithSpec<S.Verdict>;
export type VerdictRow = S.VerdictRow;
export type SetFigures = S.SetFigures;

export const experimentHref = (id: string) => `#/experiments/${encodeURIComponent(id)}`;

/** An axis value as a cell: a path by its last part (the full path in the title). */
export function shortValue(v: unknown): string {
  const s = typeof v === "string" ? v : JSON.stringify(v);
  return s.includes("/") ? (s.replace(/\/+$/, "").split("/").pop() ?? s) : s;
}

/** The axis name as a column header: its last field. */
export const axisLabel = (path: string) => path.split(".").pop() ?? path;
