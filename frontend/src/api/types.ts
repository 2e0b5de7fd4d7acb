// The API's shapes under the names the UI uses: aliases of schema.ts, which is generated from the
// API's OpenAPI schema (`make codegen`). Nothing here restates a field: change the pydantic model.

import type { RunStatus } from "./contract";
import type * as S from "./schema";

export { ACTIVE_STATUSES, ALL_STATUSES, GENERATE_MARKER, PHASES, TERMINAL_STATUSES, STATUS_RANK } from "./contract";
export type { JobKind, Phase } from "./contract";
export type { RunStatus };

/** A run config's sections ("model", "data", "training", ...) and their fields. The API keeps it
 *  open JSON; its fields are described at runtime by GET /api/schema/run-config (lib/schema.ts). */
export type RunConfig = Record<string, Record<string, unknown>>;

/** What each job kind writes as its result: free JSON of the worker's job (no model in the API). */
export type JobResult = Record<string, any>;

/** The open JSON fields narrowed: a config is sectioned (RunConfig). */
type WithConfig<T extends { config: unknown }> = Omit<T, "config"> & { config: RunConfig };

export type Run = WithConfig<S.RunPublic>;
export type AttemptEntry = S.AttemptEntry;
export type RunPage = Omit<S.RunList, "items"> & { items: Run[] };
export type Preset = WithConfig<S.Preset>;
export type FileEntry = S.FoundPath;
export type ModelEstimate = S.ModelEstimate;
export type Estimates = S.Estimates;
export type Preview = WithConfig<S.Preview>;
export type Series = S.Series;
export type Metrics = S.Metrics;
export type RunCommand = S.RunCommand;
/** One stored event (events.jsonl line plus the attempt it came from); also the SSE `metric`. */
export type RunEvent = S.EventPublic;
export type LogChunk = S.LogText;
/** The SSE `log` message. */
export type LogEvent = S.LogMessage;
export type Checkpoint = S.CheckpointPublic;
export type Gpu = S.GpuPublic;
export type Worker = S.WorkerPublic;
export type SlurmPartition = S.Partition;
export type SlurmCluster = S.ClusterReport;
/** FastAPI's 422 item. */
export type ValidationItem = S.ValidationError;
/** A job as listed; GET /jobs/{id} adds its queue position and a download's progress. */
export type Job = Omit<S.JobPublic, "result"> & { result: JobResult | null } & Partial<Pick<S.JobDetail, "queue_position" | "progress">>;
export type JobDetail = Job & Pick<S.JobDetail, "queue_position" | "progress">;
export type DownloadProgress = S.DownloadProgress;
export type JobLog = S.JobLog;
export type MergeQueued = S.MergeQueued;
export type ModelInfo = S.ModelInfo;
export type EvalSetInfo = S.EvalSetInfo;
export type Sample = S.Sample;
/** Who is signed in (GET /api/me). */
export type Me = S.Me;
export type User = S.UserPublic;
/** A user as created or changed: its one-time password, when one was made. */
export type UserCreated = S.UserCreated;
export type Token = S.TokenPublic;
/** A token as created: the secret, shown this once. */
export type TokenCreated = S.TokenCreated;
export type AuditRow = S.AuditRow;
export type Samples = S.Samples;
/** GET /api/settings/hub: whether a Hub token is set, from where, and its last check (never the token). */
export type HubTokenState = S.HubTokenState;
export type HubCheck = S.HubCheck;
export type Score = S.ScorePublic;
export type Channel = S.ChannelPublic;
export type Delivery = S.DeliveryPublic;
export type TrackerState = S.TrackerState;
