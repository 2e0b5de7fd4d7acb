// "Try it": continue a prompt with one of the run's checkpoints. The worker that holds the
// checkpoint runs it as a generate job; the continuation is read from the job's log as it grows
// (after the marker line) and replaced by the job's result when it ends.

import { useRef, useState } from "preact/hooks";
import { api, ApiError, post } from "../../api/client";
import { ACTIVE_STATUSES, GENERATE_MARKER, type Checkpoint, type Job, type JobLog } from "../../api/types";
import { POLL, usePoll } from "../../api/usePoll";

export function TryIt({ runId, checkpoints }: { runId: string; checkpoints: Checkpoint[] }) {
  const usable = checkpoints.filter((c) => c.exists);
  const [checkpoint, setCheckpoint] = useState("");
  const [prompt, setPrompt] = useState("");
  const [maxNew, setMaxNew] = useState(64);
  const [mode, setMode] = useState<"greedy" | "sampled">("greedy");
  const [job, setJob] = useState<Job | null>(null);
  const [log, setLog] = useState("");
  const [error, setError] = useState<string | null>(null);
  const offset = useRef(0);
  const chosen = checkpoint || usable[usable.length - 1]?.name || "";

  // The generation's log as it is written, and the job until it ends.
  usePoll(
    `generate-${job?.id}`,
    async (signal) => {
      if (!job) return;
      const chunk = await api<JobLog>(`/jobs/${job.id}/log?after=${offset.current}`, { signal });
      if (chunk.text) {
        offset.current = chunk.next;
        setLog((old) => old + chunk.text);
      }
      const fresh = await api<Job>(`/jobs/${job.id}`, { signal });
      if (fresh.status !== job.status || !ACTIVE_STATUSES.has(fresh.status)) setJob(fresh);
    },
    { every: POLL.stream, enabled: job !== null && ACTIVE_STATUSES.has(job.status) },
  );

  if (usable.length === 0) return null;
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(null);
    setLog("");
    offset.current = 0;
    try {
      const params = { run_id: runId, checkpoint: chosen, prompt, max_new_tokens: maxNew, mode };
      setJob(await post<Job>("/jobs", { kind: "generate", params }));
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    }
  };
  const running = job !== null && ACTIVE_STATUSES.has(job.status);
  const streamed = log.includes(GENERATE_MARKER) ? log.split(GENERATE_MARKER)[1].replace(/^\n/, "") : "";
  const answer: string | null = job?.status === "succeeded" && job.result ? String(job.result.text) : running ? streamed : null;

  return (
    <section class="card" aria-labelledby="try-h" data-testid="try-it">
      <h2 id="try-h">Try it</h2>
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
          New tokens
          <input type="number" min={1} max={512} value={maxNew} onInput={(e) => setMaxNew(Number((e.target as HTMLInputElement).value))} />
        </label>
        <label>
          Decoding
          <select value={mode} onChange={(e) => setMode((e.target as HTMLSelectElement).value as "greedy" | "sampled")}>
            <option value="greedy">greedy</option>
            <option value="sampled">sampled (seed 0)</option>
          </select>
        </label>
        <label class="wide">
          Prompt
          <textarea rows={3} value={prompt} required maxLength={4000} onInput={(e) => setPrompt((e.target as HTMLTextAreaElement).value)} />
        </label>
        <button type="submit" class="btn primary" disabled={running || !prompt.trim()}>
          {running ? "Generating…" : "Generate"}
        </button>
      </form>
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : null}
      {job ? (
        <div class="try-answer" aria-live="polite">
          <p class="muted small" data-testid="try-status">
            {job.status === "queued"
              ? "queued on the worker that holds the checkpoint…"
              : job.status === "succeeded" && job.result
                ? `${job.result.new_tokens} tokens in ${Number(job.result.seconds).toFixed(1)} s (${job.result.mode})`
                : job.status === "failed"
                  ? `failed: ${job.status_reason ?? ""}`
                  : job.status}
          </p>
          {answer !== null ? (
            <p class="mono try-text" data-testid="try-text">
              <span class="muted">{job.params.prompt as string}</span>
              {answer}
            </p>
          ) : null}
        </div>
      ) : null}
    </section>
  );
}
