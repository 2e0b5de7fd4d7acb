// Results back out: the run's model card (what the panel measured, as Markdown), an export for
// serving (bf16 safetensors shards, re-scored on the run's evaluation sets next to the checkpoint
// it came from) and a publish to a Hub repo. Exports and publishes are jobs: their status,
// reason and result are the server's, read again while one is live.

import { useEffect, useState } from "preact/hooks";
import { ApiError, post, qs, tokenUrl } from "../../api/client";
import { ACTIVE_STATUSES, type Checkpoint, type Job, type Run } from "../../api/types";
import { POLL, useApi } from "../../api/usePoll";
import { StatusBadge } from "../../components/StatusBadge";
import { bytes, num } from "../../lib/format";

interface ExportRow {
  set: string;
  characters: number;
  source_bits_per_char: number;
  export_bits_per_char: number;
  difference: number;
}

function ExportResult({ job }: { job: Job }) {
  const r = job.result ?? {};
  const rows = (r.eval ?? []) as ExportRow[];
  return (
    <div class="small" data-testid="export-result">
      <div class="mono muted">
        {String(r.output)} · {String(r.shards)} safetensors · {bytes(Number(r.size_bytes))}
      </div>
      {rows.length ? (
        <table class="table" data-testid="export-eval">
          <thead>
            <tr>
              <th>Set</th>
              <th class="num">Characters</th>
              <th class="num">Checkpoint bits/char</th>
              <th class="num">Export bits/char</th>
              <th class="num">Change</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((x) => (
              <tr key={x.set}>
                <td>{x.set}</td>
                <td class="num">{x.characters}</td>
                <td class="num">{num(x.source_bits_per_char, 4)}</td>
                <td class="num">{num(x.export_bits_per_char, 4)}</td>
                <td class={`num${Math.abs(x.difference) >= 0.01 ? " warn" : ""}`}>
                  {x.difference >= 0 ? "+" : ""}
                  {num(x.difference, 4)}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <p class="muted">The run has no evaluation set: the export was not re-scored.</p>
      )}
    </div>
  );
}

function JobLine({ job }: { job: Job }) {
  const p = job.params;
  return (
    <li data-testid={`${job.kind}-job`} data-status={job.status}>
      {job.kind} of {String(p.checkpoint)}
      {job.kind === "publish" ? ` to ${String(p.repo_id)}${p.private ? " (private)" : ""}` : ` (${String(p.dtype)})`} <StatusBadge status={job.status} />
      {job.status_reason ? <span class="muted"> {job.status_reason}</span> : null}
      {job.kind === "export" && job.status === "succeeded" ? <ExportResult job={job} /> : null}
      {job.kind === "publish" && job.status === "succeeded" ? <span class="mono small"> commit {String(job.result?.commit ?? "").slice(0, 10)}</span> : null}
    </li>
  );
}

export function Ship({ run, checkpoints }: { run: Run; checkpoints: Checkpoint[] }) {
  const usable = checkpoints.filter((c) => c.exists);
  const [checkpoint, setCheckpoint] = useState("");
  const [repo, setRepo] = useState("");
  const [isPrivate, setPrivate] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const [live, setLive] = useState(false);
  const exports = useApi<Job[]>(`/jobs${qs({ kind: "export", run_id: run.id })}`, { every: live ? POLL.live : POLL.idle });
  const publishes = useApi<Job[]>(`/jobs${qs({ kind: "publish", run_id: run.id })}`, { every: live ? POLL.live : POLL.idle });
  const jobs = [...(exports.data ?? []), ...(publishes.data ?? [])].sort((a, b) => b.created_at.localeCompare(a.created_at));
  const anyLive = jobs.some((j) => ACTIVE_STATUSES.has(j.status));
  useEffect(() => setLive(anyLive), [anyLive]);
  const chosen = checkpoint || usable[usable.length - 1]?.name || "";

  const start = async (kind: "export" | "publish") => {
    setError(null);
    const params = kind === "export" ? { run_id: run.id, checkpoint: chosen } : { run_id: run.id, checkpoint: chosen, repo_id: repo.trim(), private: isPrivate };
    try {
      await post<Job>("/jobs", { kind, params });
      setLive(true);
      exports.reload();
      publishes.reload();
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    }
  };

  return (
    <section class="card" aria-labelledby="ship-h" data-testid="ship">
      <div class="section-head">
        <h2 id="ship-h">Export &amp; publish</h2>
        <a class="btn btn-small" href={tokenUrl(`/runs/${run.id}/model-card`)} download={`${run.id}-README.md`}>
          Model card
        </a>
      </div>
      {usable.length === 0 ? (
        <p class="muted">No checkpoint to export yet.</p>
      ) : (
        <form class="try-form" onSubmit={(e) => e.preventDefault()}>
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
          <button type="button" class="btn" onClick={() => start("export")}>
            Export for serving
          </button>
          <label>
            Hub repo
            <input value={repo} placeholder="org/name" maxLength={96} onInput={(e) => setRepo((e.target as HTMLInputElement).value)} />
          </label>
          <label>
            <input type="checkbox" checked={isPrivate} onChange={(e) => setPrivate((e.target as HTMLInputElement).checked)} /> private
          </label>
          <button type="button" class="btn" disabled={!repo.trim()} onClick={() => start("publish")}>
            Publish
          </button>
        </form>
      )}
      {run.method === "lora" ? <p class="muted small">A LoRA checkpoint is exported and published from its merge: merge it first (Checkpoints).</p> : null}
      {error ? (
        <p class="error" role="alert" data-testid="ship-error">
          {error}
        </p>
      ) : null}
      {jobs.length ? (
        <ul class="plain" data-testid="ship-jobs">
          {jobs.map((j) => (
            <JobLine key={j.id} job={j} />
          ))}
        </ul>
      ) : null}
    </section>
  );
}
