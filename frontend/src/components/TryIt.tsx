// "Try it": continue a prompt with any checkpoint of the run, as a queued job on the worker
// that holds it (the adapter on its base, the run's tokenizer). The answer streams in through
// the job's log; the final text is the job's result. Nothing shown is guessed: status and text
// are what the server reported.

import { useEffect, useRef, useState } from "preact/hooks";
import { api, post } from "../api/client";
import { ACTIVE_STATUSES, type Checkpoint, type Job, type Run } from "../api/types";
import { StatusBadge } from "./StatusBadge";

/** The continuation inside a generate job's log: what follows its "[mode] prompt" line. */
function streamed(log: string): string {
  const lines = log.split("\n");
  const start = lines.findIndex((l) => /^\[(greedy|sampled)\] /.test(l));
  if (start < 0) return "";
  return lines
    .slice(start + 1)
    .filter((l) => !l.startsWith("[cpt-panel]"))
    .join("\n");
}

export function TryIt({ run, checkpoints }: { run: Run; checkpoints: Checkpoint[] | null }) {
  const saved = (checkpoints ?? []).filter((c) => c.exists);
  const [picked, setPicked] = useState("");
  const [prompt, setPrompt] = useState("");
  const [tokens, setTokens] = useState(48);
  const [mode, setMode] = useState<"greedy" | "sampled">("greedy");
  const [job, setJob] = useState<Job | null>(null);
  const [log, setLog] = useState("");
  const [error, setError] = useState<string | null>(null);
  const next = useRef(0);
  const checkpoint = picked || saved[saved.length - 1]?.name || "";

  useEffect(() => {
    if (!job || !ACTIVE_STATUSES.has(job.status)) return;
    const t = window.setInterval(async () => {
      try {
        const r = await api<{ text: string; next: number }>(`/jobs/${job.id}/log?after=${next.current}`);
        if (r.text) {
          next.current = r.next;
          setLog((l) => l + r.text);
        }
        setJob(await api<Job>(`/jobs/${job.id}`));
      } catch (err) {
        setError(String(err));
      }
    }, 500);
    return () => window.clearInterval(t);
  }, [job?.id, job?.status]);

  if (!saved.length) return null;
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(null);
    setLog("");
    next.current = 0;
    try {
      const params = { run_id: run.id, checkpoint, prompt, max_new_tokens: tokens, mode };
      setJob(await post<Job>("/jobs", { kind: "generate", params, queue: run.queue }));
    } catch (err) {
      setError(String(err));
    }
  };
  const done = job?.status === "succeeded";
  const answer = done ? String(job?.result?.text ?? "") : streamed(log);
  return (
    <section class="card" aria-labelledby="try-h" data-testid="try-it">
      <div class="section-head">
        <h2 id="try-h">Try it</h2>
        <span class="muted small">a queued job on the worker's job slot</span>
      </div>
      <form class="try-form" onSubmit={submit}>
        <label>
          Checkpoint{" "}
          <select value={checkpoint} onChange={(e) => setPicked((e.target as HTMLSelectElement).value)}>
            {saved.map((c) => (
              <option key={c.name} value={c.name}>
                {c.name}
              </option>
            ))}
          </select>
        </label>
        <label>
          Mode{" "}
          <select value={mode} onChange={(e) => setMode((e.target as HTMLSelectElement).value as "greedy" | "sampled")}>
            <option value="greedy">greedy</option>
            <option value="sampled">sampled</option>
          </select>
        </label>
        <label>
          New tokens{" "}
          <input type="number" min={1} max={1024} value={tokens} onInput={(e) => setTokens(Number((e.target as HTMLInputElement).value))} />
        </label>
        <label class="try-prompt">
          Prompt
          <textarea rows={2} value={prompt} onInput={(e) => setPrompt((e.target as HTMLTextAreaElement).value)} />
        </label>
        <button type="submit" class="btn btn-primary" disabled={!prompt || (job !== null && ACTIVE_STATUSES.has(job.status))}>
          Generate
        </button>
      </form>
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : null}
      {job ? (
        <div class="try-answer" data-testid="try-answer" data-status={job.status}>
          <StatusBadge status={job.status} /> {job.status_reason ? <span class="muted small">{job.status_reason}</span> : null}
          <pre class="sample-text">
            <span class="muted">{String(job.params.prompt ?? "")}</span>
            {answer}
          </pre>
        </div>
      ) : null}
    </section>
  );
}
