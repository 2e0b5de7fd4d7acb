// Why the run is in its state, when that needs saying: a failure's reason, a cancel under way,
// where a Slurm job is, why a queued run waits, a worker gone quiet.

import { WORKER_STATUSES } from "../../api/contract";
import type { Run } from "../../api/types";
import { WaitingReason } from "./Attempts";

/** The reason the server gave, prominent; nothing is shown for states that need no explanation. */
export function StatusBanner({ run, now }: { run: Run; now: number }) {
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
  // A Slurm queue's run says where its job is: pending with Slurm's reason, or on its nodes.
  if ((run.status === "starting" || run.status === "running") && run.status_reason?.startsWith("Slurm job"))
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
        No word from {run.worker || "the worker"} for {Math.round(silent)} s
        {run.lost_after_seconds ? ` (the run is judged lost after ${Math.round(run.lost_after_seconds)} s)` : ""}.
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
