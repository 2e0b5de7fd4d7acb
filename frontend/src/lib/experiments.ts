// The shapes of /api/experiments (backend/api/routes/experiments.py, verdict.py) and small helpers.

import type { Run } from "../api/types";

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

export interface Experiment {
  id: string;
  name: string;
  spec: ExperimentSpec;
  status: "draft" | "running" | "finished" | "incomplete";
  created_at: string;
  launched_at: string | null;
  run_count: number;
  counts: Record<string, number>;
  runs: Run[];
  owner: string | null;
}

export interface ExperimentPreset {
  name: string;
  label: string;
  spec: ExperimentSpec;
}

export interface SetFigures {
  start_step: number;
  start: number;
  end_step: number;
  end: number;
  change: number | null;
}

export interface VerdictRow {
  run_id: string;
  name: string;
  status: string;
  status_reason: string | null;
  stopped_early: { rung: number; step: number; value: number; cutoff: number } | null;
  values: Record<string, unknown>;
  method: string;
  trainable_params: number | null;
  total_params: number | null;
  tokens_seen: number | null;
  step: number | null;
  wall_seconds: number | null;
  world_size: number | null;
  device_hours: number | null;
  attempts: number;
  sets: Record<string, SetFigures>;
  forgetting: Record<string, number | null>;
  within_cap: boolean | null;
  same_text: boolean;
  eligible: boolean;
  curve: { step: number[]; tokens_seen: (number | null)[]; value: number[] };
}

export interface Verdict {
  experiment: { id: string; name: string; status: Experiment["status"]; counts: Record<string, number>; owner: string | null };
  spec: ExperimentSpec;
  axes: string[];
  target: string;
  retain: string[];
  forgetting_cap: number;
  sets: string[];
  rows: VerdictRow[];
  winner: {
    run_id: string;
    name: string;
    target_bits_per_char: number;
    runner_up: string | null;
    runner_up_bits_per_char: number | null;
    margin: number | null;
  } | null;
  no_winner: string | null;
  pareto: Record<string, string[]>;
  rungs: { rung: number; kept: number; cutoff: number | null; runs: { run_id: string; step: number; value: number; stopped: boolean }[] }[];
  warnings: string[];
  samples: { steps: Record<string, number | null>; prompts: { set: string; prompt: string; mode: string; texts: Record<string, string> }[] };
}

export const experimentHref = (id: string) => `#/experiments/${encodeURIComponent(id)}`;

/** An axis value as a cell: a path by its last part (the full path in the title). */
export function shortValue(v: unknown): string {
  const s = typeof v === "string" ? v : JSON.stringify(v);
  return s.includes("/") ? s.replace(/\/+$/, "").split("/").pop() ?? s : s;
}

/** The axis name as a column header: its last field. */
export const axisLabel = (path: string) => path.split(".").pop() ?? path;
