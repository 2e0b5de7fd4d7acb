// Why a run's attempts ended (the server's attempt_log), and why a queued run still waits.

import type { AttemptEntry, Run, RunStatus } from "../../api/types";
import { POLL, useApi } from "../../api/usePoll";
import { StatusBadge } from "../../components/StatusBadge";

/** One row per ended attempt: its status, the step it reached, the reason, and what followed. */
export function AttemptLog({ run }: { run: Run }) {
  const entries: AttemptEntry[] = run.attempt_log ?? [];
  if (entries.length === 0) return null;
  return (
    <section class="card" aria-labelledby="attempts-h" data-testid="attempts">
      <h2 id="attempts-h">Attempts</h2>
      <table class="table">
        <thead>
          <tr>
            <th class="num">Attempt</th>
            <th>Ended</th>
            <th class="num">At step</th>
            <th>Why</th>
            <th>Then</th>
          </tr>
        </thead>
        <tbody>
          {entries.map((e) => (
            <tr key={e.attempt} data-attempt={e.attempt}>
              <td class="num">{e.attempt}</td>
              <td>
                <StatusBadge status={e.status as RunStatus} />
              </td>
              <td class="num">{e.step ?? "–"}</td>
              <td class="attempt-reason">{e.reason}</td>
              <td>{e.restarted ? `restarted automatically as attempt ${e.attempt + 1}` : "not restarted"}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

/** A queued run's banner: the server's waiting reason (queue, position, busy workers). The live
 * stream carries no waiting reason (it changes with other runs), so it is re-read while queued. */
export function WaitingReason({ run }: { run: Run }) {
  const fresh = useApi<Run>(run.status === "queued" ? `/runs/${run.id}` : null, { every: POLL.idle });
  const reason = fresh.data ? fresh.data.waiting_reason : (run.waiting_reason ?? null);
  return (
    <div class="banner banner-queued" role="status" data-testid="waiting-reason">
      {reason ?? (
        <>
          Waiting for a worker on queue <code>{run.queue}</code>.
        </>
      )}
    </div>
  );
}
