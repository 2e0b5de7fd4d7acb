// "Score all runs": one evaluate job per run of the experiment, on the run's last checkpoint
// (the verdict's `last_checkpoint`), each through the ordinary POST /jobs; the verdict is read
// again as each job ends, so its benchmark columns fill in.

import { useState } from "preact/hooks";
import { api, ApiError, post } from "../../api/client";
import { ACTIVE_STATUSES, type Job } from "../../api/types";
import { POLL, usePoll } from "../../api/usePoll";
import type { Verdict } from "../../lib/experiments";

const list = (text: string) =>
  text
    .split(/[\n,]/)
    .map((s) => s.trim())
    .filter(Boolean);

interface Started {
  runId: string;
  checkpoint: string;
  job?: Job;
  error?: string;
}

export function ScoreAll({ v, onScored }: { v: Verdict; onScored: () => void }) {
  const [tasks, setTasks] = useState("");
  const [taskFiles, setTaskFiles] = useState("");
  const [limit, setLimit] = useState("");
  const [started, setStarted] = useState<Started[]>([]);
  const [busy, setBusy] = useState(false);
  const scorable = v.rows.filter((r) => r.last_checkpoint);
  const active = started.filter((s) => s.job && ACTIVE_STATUSES.has(s.job.status));

  usePoll(
    `score-all-${active.map((s) => s.job?.id).join(",")}`,
    async (signal) => {
      const fresh = await Promise.all(active.map((s) => api<Job>(`/jobs/${s.job!.id}`, { signal })));
      const moved = fresh.filter((j, i) => j.status !== active[i].job!.status);
      if (!moved.length) return;
      setStarted((all) => all.map((s) => ({ ...s, job: fresh.find((j) => j.id === s.job?.id) ?? s.job })));
      onScored();
    },
    { every: POLL.live, enabled: active.length > 0 },
  );

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    const params = { task_files: list(taskFiles), tasks: list(tasks), ...(limit ? { limit: Number(limit) } : {}) };
    const out: Started[] = [];
    for (const r of scorable) {
      const checkpoint = r.last_checkpoint as string;
      try {
        const job = await post<Job>("/jobs", { kind: "evaluate", params: { run_id: r.run_id, checkpoint, ...params } });
        out.push({ runId: r.run_id, checkpoint, job });
      } catch (err) {
        out.push({ runId: r.run_id, checkpoint, error: err instanceof ApiError ? err.message : String(err) });
      }
    }
    setStarted(out);
    setBusy(false);
  };

  return (
    <section class="card" data-testid="score-all">
      <div class="section-head">
        <h2>Score all runs</h2>
        <span class="muted small">one evaluate job per run, on its last checkpoint; the scores become columns of the table</span>
      </div>
      {scorable.length ? (
        <form class="try-form" onSubmit={submit}>
          <label>
            Harness tasks
            <input data-testid="score-all-tasks" value={tasks} onInput={(e) => setTasks((e.target as HTMLInputElement).value)} placeholder="belebele_eng_Latn, xnli_en" />
          </label>
          <label>
            Task files (YAML or folders)
            <input data-testid="score-all-task-files" value={taskFiles} onInput={(e) => setTaskFiles((e.target as HTMLInputElement).value)} placeholder="/data/tasks/my_mc.yaml" />
          </label>
          <label>
            Documents per task
            <input type="number" min={1} value={limit} onInput={(e) => setLimit((e.target as HTMLInputElement).value)} placeholder="all" />
          </label>
          <button type="submit" class="btn" data-testid="score-all-submit" disabled={busy || active.length > 0 || (!tasks.trim() && !taskFiles.trim())}>
            {active.length ? "Scoring…" : `Score ${scorable.length} run${scorable.length === 1 ? "" : "s"}`}
          </button>
          {scorable.length < v.rows.length ? <span class="muted small">{v.rows.length - scorable.length} without a checkpoint: not scored</span> : null}
        </form>
      ) : (
        <p class="muted">No run has a checkpoint yet.</p>
      )}
      {started.length ? (
        <ul class="small" data-testid="score-all-jobs">
          {started.map((s) => (
            <li key={s.runId} data-run={s.runId}>
              {s.runId} {s.checkpoint}:{" "}
              {s.job ? (
                <>
                  job <a href={`#/jobs/${s.job.id}`}>{s.job.id}</a> {s.job.status}
                  {s.job.status_reason && s.job.status !== "running" ? ` — ${s.job.status_reason}` : ""}
                </>
              ) : (
                <span class="error" role="alert">
                  {s.error}
                </span>
              )}
            </li>
          ))}
        </ul>
      ) : null}
    </section>
  );
}
