// The run's log: the live tail of the current attempt (kept by useRunLive), or the stored log of
// an earlier attempt chosen from a menu, and a download of the whole of either.

import { useState } from "preact/hooks";
import { api, qs, saveText } from "../../api/client";
import { ACTIVE_STATUSES, type LogChunk, type Run } from "../../api/types";
import { useApi } from "../../api/usePoll";
import { LogViewer } from "../../components/LogViewer";
import { LogBuffer } from "../../lib/logbuffer";
import type { RunLive } from "../../lib/useRunLive";

/** The live tail of the current attempt, or (chosen from a menu) the stored log of an earlier one. */
export function LogPanel({ run, live }: { run: Run; live: RunLive }) {
  const [picked, setPicked] = useState<number | null>(null);
  const stored = useApi<LogChunk>(picked === null ? null : `/runs/${run.id}/logs${qs({ tail: 5000, attempt: picked })}`);
  const older = stored.error ? [`could not load attempt ${picked}: ${stored.error}`] : stored.data && picked !== null ? linesOf(picked, stored.data) : null;
  const attempt = picked ?? live.logs?.attempt ?? run.attempt;
  const lines = picked === null ? (live.logs?.view() ?? []) : (older ?? []);
  return (
    <section class="card" aria-labelledby="logs-h">
      <div class="section-head">
        <h2 id="logs-h">Log</h2>
        <span class="muted small">
          attempt {attempt}
          {picked === null && ACTIVE_STATUSES.has(run.status) ? <span data-testid="log-live"> · live</span> : ""}
        </span>
        {run.attempt > 1 ? (
          <label class="small">
            <span class="sr-only">Show the log of attempt</span>
            <select
              value={picked === null ? "" : String(picked)}
              onChange={(e) => {
                const v = (e.target as HTMLSelectElement).value;
                setPicked(v === "" ? null : Number(v));
              }}
            >
              <option value="">{ACTIVE_STATUSES.has(run.status) ? "latest (live)" : "latest"}</option>
              {Array.from({ length: run.attempt }, (_, i) => i + 1).map((a) => (
                <option key={a} value={a}>
                  attempt {a}
                </option>
              ))}
            </select>
          </label>
        ) : null}
        <div class="spacer" />
        <button type="button" class="btn btn-small" onClick={() => downloadLog(run, attempt)}>
          Download log
        </button>
      </div>
      <LogViewer
        key={picked ?? "live"}
        lines={lines}
        header={
          picked === null && live.logs && live.logs.start > 0 ? (
            <button type="button" class="btn btn-small load-earlier" onClick={live.loadEarlierLogs}>
              Load earlier lines
            </button>
          ) : null
        }
      />
    </section>
  );
}

function linesOf(attempt: number, c: LogChunk): string[] {
  const b = new LogBuffer(attempt);
  b.reset(c.offset, c.text, c.next_offset);
  return b.view();
}

/** The whole log of one attempt as a .log file, fetched in byte pages (the API answers JSON). */
async function downloadLog(run: Run, attempt: number): Promise<void> {
  const parts: string[] = [];
  let offset = 0;
  for (;;) {
    const c = await api<LogChunk>(`/runs/${run.id}/logs${qs({ offset, limit: 4 * 1024 * 1024, attempt })}`);
    parts.push(c.text);
    if (!c.text || c.next_offset >= c.size || c.next_offset <= offset) break;
    offset = c.next_offset;
  }
  saveText(parts.join(""), `${run.id}-attempt-${attempt}.log`);
}
