// The run page's title line: name, status, the live stream's state, and what can be done to the
// run (cancel, resume, clone, relaunch, delete).

import type { Run } from "../../api/types";
import { ACTIVE_STATUSES } from "../../api/types";
import type { SseState } from "../../api/sse";
import { LiveDot } from "../../components/LiveDot";
import { canCancel, canDelete, canResume, type RunActions } from "../../components/RunActions";
import { StatusBadge } from "../../components/StatusBadge";
import type { Checkpoint } from "../../api/types";

export function Header({ run, live, checkpoints, actions }: { run: Run; live: SseState; checkpoints: Checkpoint[] | null; actions: RunActions }) {
  return (
    <div class="page-head">
      <a href="#/runs" class="muted">
        Runs
      </a>
      <span class="muted">/</span>
      <h1 class="run-title">{run.name || run.id}</h1>
      <StatusBadge status={run.status} />
      {ACTIVE_STATUSES.has(run.status) ? <LiveDot state={live} /> : null}
      <div class="spacer" />
      {canCancel(run) ? (
        <button type="button" class="btn btn-danger" onClick={() => actions.cancel(run)}>
          Cancel
        </button>
      ) : null}
      {canResume(run) && checkpoints?.some((c) => c.exists) ? (
        // The API refuses a resume without a checkpoint: offered only when one is on disk.
        <button type="button" class="btn" onClick={() => actions.resume(run, "last", checkpoints)}>
          Resume
        </button>
      ) : null}
      <button type="button" class="btn" onClick={() => actions.clone(run)}>
        Clone
      </button>
      <a class="btn" href={`#/launch?from=${encodeURIComponent(run.id)}`}>
        Edit &amp; relaunch
      </a>
      {canDelete(run) ? (
        <button type="button" class="btn btn-ghost" onClick={() => actions.remove(run)}>
          Delete
        </button>
      ) : null}
    </div>
  );
}
