// The run page's title line: name, status, the live stream's state, the owner, and what can be
// done to the run (cancel, resume, clone, relaunch, delete), disabled with the reason where this
// user may not (the API refuses it anyway).

import type { SseState } from "../../api/sse";
import { ACTIVE_STATUSES, type Checkpoint, type Run } from "../../api/types";
import { LiveDot } from "../../components/LiveDot";
import { canCancel, canDelete, canResume, type RunActions } from "../../components/RunActions";
import { StatusBadge } from "../../components/StatusBadge";
import { useMe, whyNot, whyNotLaunch } from "../../lib/me";

export function Header({ run, live, checkpoints, actions }: { run: Run; live: SseState; checkpoints: Checkpoint[] | null; actions: RunActions }) {
  const me = useMe();
  const denied = whyNot(me, run.owner);
  const noLaunch = whyNotLaunch(me);
  return (
    <>
      <div class="page-head">
        <a href="#/runs" class="muted">
          Runs
        </a>
        <span class="muted">/</span>
        <h1 class="run-title">{run.name || run.id}</h1>
        <StatusBadge status={run.status} />
        {ACTIVE_STATUSES.has(run.status) ? <LiveDot state={live} /> : null}
        <div class="spacer" />
        {run.owner ? (
          <span class="muted small" data-testid="run-owner">
            owner: {run.owner}
          </span>
        ) : null}
        {canCancel(run) ? (
          <button type="button" class="btn btn-danger" disabled={!!denied} title={denied ?? undefined} onClick={() => actions.cancel(run)}>
            Cancel
          </button>
        ) : null}
        {canResume(run, checkpoints) ? (
          // The API refuses a resume without a checkpoint: offered only when one is on disk.
          <button type="button" class="btn" disabled={!!denied} title={denied ?? undefined} onClick={() => actions.resume(run, "last", checkpoints)}>
            Resume
          </button>
        ) : null}
        <button type="button" class="btn" disabled={!!noLaunch} title={noLaunch ?? undefined} onClick={() => actions.clone(run)}>
          Clone
        </button>
        <a class="btn" href={`#/launch?from=${encodeURIComponent(run.id)}`}>
          Edit &amp; relaunch
        </a>
        {canDelete(run) ? (
          <button type="button" class="btn btn-ghost" disabled={!!denied} title={denied ?? undefined} onClick={() => actions.remove(run)}>
            Delete
          </button>
        ) : null}
      </div>
      {denied ? (
        <p class="muted small" data-testid="run-actions-reason">
          {denied}
        </p>
      ) : null}
    </>
  );
}
