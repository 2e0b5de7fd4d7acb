// One job as the server pushes it (GET /jobs/{id}/stream): the same view as GET /jobs/{id}, sent
// first on connect and then after each change the worker reports (a download's measured progress
// arrives with the log chunk that carries it). A finished job is read once.

import { useEffect, useState } from "preact/hooks";
import type { JobDetail } from "./types";
import { subscribe } from "./sse";
import { useApi } from "./usePoll";

export function useJobStream(jobId: string, live: boolean): JobDetail | null {
  const [pushed, setPushed] = useState<JobDetail | null>(null);
  // Read again when the job stops being live: its final view (a download's 100 %) is then the
  // stored one, whatever the stream managed to send before it closed.
  const once = useApi<JobDetail>(`/jobs/${jobId}`, { every: null, refresh: live ? 1 : 0 }).data ?? null;
  useEffect(() => {
    setPushed(null);
    if (!live) return;
    return subscribe(`/jobs/${jobId}/stream`, { handlers: { job: (j: JobDetail) => setPushed(j) } });
  }, [jobId, live]);
  return live ? (pushed ?? once) : once;
}
