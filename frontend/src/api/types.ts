// Shapes of the API's JSON, as documented in docs/api.md.

import type { JobKind, Phase, RunStatus } from "./contract";

export { ACTIVE_STATUSES, ALL_STATUSES, GENERATE_MARKER, PHASES, TERMINAL_STATUSES, STATUS_RANK } from "./contract";
export type { JobKind, Phase } from "./contract";
export type { RunStatus };

export type RunConfig = Record<string, Record<string, unknown>>;

export interface Run {
  id: string;
  name: string | null;
  status: RunStatus;
  status_reason: string | null;
  preset: string | null;
  config: RunConfig;
  method: "lora" | "full";
  model: string;
  queue: string;
  attempt: number;
  worker: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  step: number | null;
  max_steps: number | null;
  epoch: number | null;
  tokens_seen: number | null;
  tokens_per_second: number | null;
  loss: number | null;
  eval_loss: number | null;
  perplexity: number | null;
  eta_seconds: number | null;
  output_dir: string | null;
  tags: string[];
  note: string;
  /** Who launched it: an operator changes only its own runs. */
  owner?: string | null;
  /** Seconds trained over all attempts (server-measured). */
  duration_seconds: number | null;
  /** Seconds of the attempts that ended; the running one is counted from started_at. */
  attempts_seconds?: number;
  /** The first attempt's start (started_at is the current attempt's). */
  first_started_at?: string | null;
  /** What the training script is doing (cpt_contract PHASES) and since when. */
  phase?: Phase | null;
  phase_since?: string | null;
  /** When the ETA runs out: the page counts down to it between updates. */
  eta_until?: string | null;
  /** The worker's last word about the run (server time), and when silence means lost. */
  last_seen_at?: string | null;
  lost_after_seconds?: number | null;
  /** Per metric: last value (and step), best value (and step) where a direction is known. */
  metrics_summary: Record<string, { last?: number | null; last_step?: number | null; best?: number | null; best_step?: number | null }>;
  /** One entry per ended attempt (why it ended, whether it was restarted automatically). */
  attempt_log?: AttemptEntry[] | null;
  /** A queued run: why it waits (queue, position, what the queue's workers are busy with). */
  waiting_reason?: string | null;
  /** A checkpoint is on disk (looked at for failed/cancelled runs; null: not looked at). */
  has_checkpoint?: boolean | null;
}

export interface AttemptEntry {
  attempt: number;
  status: string;
  reason: string;
  step: number | null;
  restarted: boolean;
}

export interface RunPage {
  items: Run[];
  total: number;
}

export interface Preset {
  name: string;
  label: string;
  config: RunConfig;
}

export interface FileEntry {
  path: string;
  label: string;
  kind: string;
  /** Tokenizers: "extended" (a tokenizer job's output), "tokenizers" or "runs". */
  group?: string | null;
  /** An extended tokenizer's base. */
  base?: string | null;
}

/** Parameters and memory per device (bytes) from the model's config.json: backend/services/model_estimates.py. */
export interface ModelEstimate {
  tokens_per_step: number | null;
  block_size: number | null;
  params: {
    total: number;
    trainable: number;
    lora: number;
    modules_to_save: number;
    unknown_modules: string[];
  } | null;
  memory: {
    world_size: number;
    zero_stage: number;
    weights: number;
    gradients: number;
    optimizer: number;
    activations: number;
    activations_without_checkpointing: number;
    activations_with_checkpointing: number;
    total: number;
    offloaded: number;
    weight_dtype: string;
  } | null;
  note: string | null;
}

export interface Estimates {
  vocab: { model_vocab: number | null; tokenizer_vocab: number | null; new_rows: number | null; init: string | null };
  data: {
    scan_job: string | null;
    tokens: number | null;
    blocks: number | null;
    train_blocks: number | null;
    steps_per_epoch: number | null;
    total_steps: number | null;
    total_tokens: number | null;
    tokens_per_second: number | null;
    seconds: number | null;
  };
  model: ModelEstimate;
  /** Checkpoints kept against the free space of the runs volume (backend/services/estimates.py). */
  disk?: { checkpoint_bytes: number | null; kept: number | null; total_bytes: number | null; free_bytes: number | null; path: string | null };
  /** Held-out evaluation time, scoring and sampling apart (backend/services/eval_time.py). */
  evaluation?: {
    evaluations: number | null;
    characters: number | null;
    seconds_each: number | null;
    scoring_seconds: number | null;
    sampling_seconds: number | null;
    /** measured_eval | measured_training | model_size */
    scoring_basis: string | null;
    sampling_basis: string | null;
    samples: number;
    sample_tokens: number;
    tokens_per_char: number | null;
    tokens_per_char_measured: boolean;
    sampling_exceeds_scoring: boolean;
    measured_run: string | null;
    measured_seconds: number | null;
    measured_characters: number | null;
  };
}

export interface Preview {
  argv: string[];
  command: string;
  config: RunConfig;
  estimates: Estimates;
  warnings: string[];
}

export interface Series {
  step: number[];
  value: number[];
  tokens_seen: (number | null)[];
  time: number[];
}

export interface Metrics {
  series: Record<string, Series>;
  keys: string[];
  /** Where each resumed attempt started: drawn as vertical lines on every chart. */
  attempts?: { attempt: number; step: number; tokens_seen: number | null }[];
}

/** One stored event (events.jsonl line plus the attempt it came from). */
export interface RunEvent {
  seq: number;
  time: number;
  kind: "start" | "log" | "eval" | "checkpoint" | "end" | string;
  step: number;
  attempt: number;
  data: Record<string, unknown>;
}

export interface LogChunk {
  attempt: number;
  offset: number;
  next_offset: number;
  size: number;
  text: string;
}

export interface LogEvent {
  attempt: number;
  offset: number;
  text: string;
}

export interface Checkpoint {
  name: string;
  step: number;
  created_at: string | null;
  size_bytes: number | null;
  eval_perplexity: number | null;
  eval_loss: number | null;
  attempt: number;
  path: string;
  exists: boolean;
}

export interface Gpu {
  index: number;
  name: string;
  memory_total_mb: number | null;
  memory_used_mb: number | null;
  utilization_pct: number | null;
  run_id: string | null;
}

export interface Worker {
  name: string;
  host: string;
  queue: string;
  concurrency: number;
  gpus: Gpu[];
  cpu_only: boolean;
  current_runs: string[];
  last_heartbeat: string | null;
  alive: boolean;
  /** "local" (torchrun on the box) or "slurm" (the worker submits to a Slurm cluster). */
  executor?: string;
  cluster?: SlurmCluster | null;
}

/** One partition as the Slurm worker's `sinfo` reports it. */
export interface SlurmPartition {
  name: string;
  default: boolean;
  available: boolean;
  max_time_minutes: number | null;
  nodes_total: number;
  nodes_idle: number;
  nodes_allocated: number;
  nodes_other: number;
}

export interface SlurmCluster {
  partitions: SlurmPartition[];
  default_partition: string | null;
  default_time_minutes: number | null;
  error: string | null;
}

/** FastAPI's 422 item. */
export interface ValidationItem {
  loc: (string | number)[];
  msg: string;
  type?: string;
}


export interface Job {
  id: string;
  /** Who queued it (null: the panel itself); an operator cancels only its own. */
  owner?: string | null;
  kind: JobKind;
  status: RunStatus;
  status_reason: string | null;
  params: Record<string, unknown>;
  result: Record<string, any> | null;
  queue: string;
  worker: string | null;
  run_id: string | null;
  log_size: number;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  duration_seconds: number | null;
  queue_position?: number | null;
  /** A download's last progress as its tool measured it (GET /jobs/{id} only). */
  progress?: DownloadProgress | null;
}

export interface DownloadProgress {
  bytes: number;
  total_bytes: number;
  files: number;
  total_files: number;
  bytes_per_second: number | null;
  eta_seconds: number | null;
}

/** GET /api/models: backend/services/models.py::ModelInfo. */
export interface ModelInfo {
  path: string;
  label: string;
  architecture: string | null;
  model_type: string | null;
  params: number | null;
  vocab_size: number | null;
  tokenizer_vocab_size: number | null;
  tied_embeddings: boolean | null;
  dtypes: string[];
  size_bytes: number;
  source: Record<string, any>;
}

/** One entry of the `start` event's `eval_sets` (cpt_contract/events.py: EvalSetInfo). */
export interface EvalSetInfo {
  name: string;
  role: "retain" | "target" | null;
  path: string | null;
  documents: number;
  characters: number;
  bytes: number;
  tokens: number;
  windows: number;
  truncated?: boolean;
  exact?: boolean;
  /** sha256 of the scored documents: equal digests, the very same text. */
  text_sha256?: string | null;
  max_documents?: number | null;
  max_characters?: number | null;
}

/** GET /runs/{id}/samples: generations written at each evaluation. */
export interface Sample {
  seq: number | null;
  step: number;
  attempt: number;
  time: number | null;
  set: string;
  prompt: string;
  text: string;
  mode: "greedy" | "sampled";
}

export interface Samples {
  steps: number[];
  samples: Sample[];
}
