// Benchmarks: lm-evaluation-harness tasks scored on one of the run's checkpoints (an evaluate job
// on the worker that holds it; a LoRA checkpoint through its adapter), and every stored score by
// checkpoint, task and metric.

import { useState } from "preact/hooks";
import { api, ApiError, post } from "../../api/client";
import { ACTIVE_STATUSES, type Checkpoint, type Job, type Score } from "../../api/types";
import { POLL, useApi, usePoll } from "../../api/usePoll";

const lines = (text: string) =>
  text
    .split(/[\n,]/)
    .map((s) => s.trim())
    .filter(Boolean);

export function Benchmarks({ runId, checkpoints }: { runId: string; checkpoints: Checkpoint[] }) {
  const usable = checkpoints.filter((c) => c.exists);
  const [checkpoint, setCheckpoint] = useState("");
  const [taskFiles, setTaskFiles] = useState("");
  const [tasks, setTasks] = useState("");
  const [limit, setLimit] = useState("");
  const [job, setJob] = useState<Job | null>(null);
  const [error, setError] = useState<string | null>(null);
  const chosen = checkpoint || usable[usable.length - 1]?.name || "";
  const scores = useApi<Score[]>(`/runs/${runId}/scores`, { refresh: job?.status });

  usePoll(
    `evaluate-${job?.id}`,
    async (signal) => {
      if (!job) return;
      const fresh = await api<Job>(`/jobs/${job.id}`, { signal });
      if (fresh.status !== job.status) setJob(fresh);
    },
    { every: POLL.live, enabled: job !== null && ACTIVE_STATUSES.has(job.status) },
  );

  const submit = async (e: Event) => {
    e.preventDefault();
    setError(null);
    try {
      const params: Record<string, unknown> = { run_id: runId, checkpoint: chosen, task_files: lines(taskFiles), tasks: lines(tasks) };
      if (limit) params.limit = Number(limit);
      setJob(await post<Job>("/jobs", { kind: "evaluate", params }));
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    }
  };

  const rows = scores.data ?? [];
  const names = [...new Set(rows.map((s) => s.checkpoint))];
  const keys = [...new Set(rows.map((s) => `${s.task}\u0000${s.metric}`))].sort();
  const cell = (ckpt: string, key: string) => {
    const [task, metric] = key.split("\u0000");
    return rows.find((s) => s.checkpoint === ckpt && s.task === task && s.metric === metric);
  };
  if (usable.length === 0 && rows.length === 0) return null;
  const running = job !== null && ACTIVE_STATUSES.has(job.status);

  return (
    <section class="card" aria-labelledby="bench-h" data-testid="benchmarks">
      <h2 id="bench-h">Benchmarks</h2>
      {usable.length > 0 ? (
        <form class="try-form" onSubmit={submit}>
          <label>
            Checkpoint
            <select value={chosen} onChange={(e) => setCheckpoint((e.target as HTMLSelectElement).value)}>
              {usable.map((c) => (
                <option key={c.name} value={c.name}>
                  {c.name}
                </option>
              ))}
            </select>
          </label>
          <label>
            Task files (YAML or folders, one a line)
            <textarea rows={2} value={taskFiles} onInput={(e) => setTaskFiles((e.target as HTMLTextAreaElement).value)} placeholder="/data/tasks/my_mc.yaml" />
          </label>
          <label>
            Harness tasks
            <input value={tasks} onInput={(e) => setTasks((e.target as HTMLInputElement).value)} placeholder="belebele_eng_Latn, xnli_en" />
          </label>
          <label>
            Documents per task
            <input type="number" min={1} value={limit} onInput={(e) => setLimit((e.target as HTMLInputElement).value)} placeholder="all" />
          </label>
          <button type="submit" disabled={running || !chosen}>
            {running ? "Evaluating…" : "Evaluate"}
          </button>
        </form>
      ) : null}
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : null}
      {job ? (
        <p class="muted" data-testid="bench-job">
          Job <a href={`#/jobs/${job.id}`}>{job.id}</a>: {job.status}
          {job.status_reason && job.status !== "running" ? ` — ${job.status_reason}` : ""}
        </p>
      ) : null}
      {rows.length > 0 ? (
        <table class="scores" data-testid="scores">
          <thead>
            <tr>
              <th>Task</th>
              <th>Metric</th>
              {names.map((n) => (
                <th key={n}>{n}</th>
              ))}
            </tr>
          </thead>
          <tbody>
            {keys.map((key) => {
              const [task, metric] = key.split("\u0000");
              return (
                <tr key={key}>
                  <td>{task}</td>
                  <td>{metric}</td>
                  {names.map((n) => {
                    const s = cell(n, key);
                    return (
                      <td key={n} title={s?.samples != null ? `${s.samples} documents` : undefined}>
                        {s?.value != null ? s.value.toFixed(4) : "—"}
                        {s?.stderr != null ? <span class="muted"> ± {s.stderr.toFixed(4)}</span> : null}
                      </td>
                    );
                  })}
                </tr>
              );
            })}
          </tbody>
        </table>
      ) : (
        <p class="muted">No scores yet.</p>
      )}
    </section>
  );
}
