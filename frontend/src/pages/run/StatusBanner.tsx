// Why the run is in its state, when that needs saying: a failure's reason, a cancel under way,
// where a Slurm job is, why a queued run waits, a worker gone quiet.

import { WORKER_STATUSES } from "../../api/contract";
import type { Run, Worker } from "../../api/types";
import { useApi } from "../../api/usePoll";
import { WaitingReason } from "./Attempts";

/** How the worker holding the run executes it ("local" or "slurm", its heartbeat says), or null
 *  while no worker holds it (or its heartbeat is not known). */
function useExecutor(run: Run): string | null {
  const held = run.worker !== null && WORKER_STATUSES.has(run.status);
  const workers = useApi<Worker[]>(held ? "/workers" : null, { refresh: run.worker }).data;
  return workers?.find((w) => w.name === run.worker)?.executor ?? null;
}

/** The reason the server gave, prominent; nothing is shown for states that need no explanation. */
export function StatusBanner({ run, now }: { run: Run; now: number }) {
  const executor = useExecutor(run);
  if (run.status === "failed")
    return (
      <div class="banner banner-failed" role="alert" data-testid="failure-banner">
        <strong>Run failed.</strong> {run.status_reason || "The worker reported no reason; see the log below."}
      </div>
    );
  if (run.status === "cancelling")
    return (
      <div class="banner banner-cancelling" role="status">
        <strong>Cancelling…</strong> the worker is stopping the training processes.
      </div>
    );
  if (run.status === "cancelled")
    return (
      <div class="banner banner-cancelled" role="status">
        <strong>Cancelled.</strong> {run.status_reason ?? ""}
      </div>
    );
  // A run on a Slurm worker says where its job is: pending with Slurm's reason, or on its nodes.
  // Judged by the worker's executor, never by the reason's words (a local run's reads "claimed by").
  if ((run.status === "starting" || run.status === "running") && executor === "slurm" && run.status_reason)
    return (
      <div class="banner banner-queued" role="status" data-testid="scheduler-banner">
        {run.status_reason}
      </div>
    );
  if (run.status === "queued") return <WaitingReason run={run} />;
  // A worker-held run reports at least every second: silence is shown as soon as it is late,
  // long before the run is judged lost (the server's clock: last_seen_at is its own).
  const silent = silenceSeconds(run, now);
  if (silent !== null)
    return (
      <div class="banner banner-cancelling" role="status" data-testid="silence-banner">
        No word from {run.worker || "the worker"} for {Math.round(silent)} s{run.lost_after_seconds ? ` (the run is judged lost after ${Math.round(run.lost_after_seconds)} s)` : ""}.
      </div>
    );
  return null;
}

/** Seconds since the worker's last word about a run it holds, once it is late (else null). */
export function silenceSeconds(run: Run, now: number): number | null {
  if (!WORKER_STATUSES.has(run.status) || !run.last_seen_at) return null;
  const silent = (now - Date.parse(run.last_seen_at)) / 1000;
  return silent >= SILENCE_SHOWN_SECONDS ? silent : null;
}

/** A quiet run's keep-alive comes every second and a heartbeat every few: ten is late. */
const SILENCE_SHOWN_SECONDS = 10;
