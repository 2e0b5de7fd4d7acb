// The run's checkpoints: download, resume from one, merge a LoRA checkpoint into a full model
// (and follow the merge job), and the names the keep limit deleted.

import { useEffect, useState } from "preact/hooks";
import { post, qs, tokenUrl } from "../../api/client";
import { ACTIVE_STATUSES, type Checkpoint, type Job, type MergeQueued, type Run } from "../../api/types";
import { POLL, useApi } from "../../api/usePoll";
import { useConfirm } from "../../components/Confirm";
import { canResumeFrom } from "../../components/RunActions";
import { StatusBadge } from "../../components/StatusBadge";
import { bytes, dateTime, int, num } from "../../lib/format";
import { navigate } from "../../lib/router";

/** A checkpoint's merge job as the server reports it; once done, download it or train on it. */
function MergeState({ job }: { job: Job | undefined }) {
  if (!job) return null;
  const output = job.result?.output as string | undefined;
  return (
    <div class="small merge-state" data-testid="merge-state" data-status={job.status}>
      merge <StatusBadge status={job.status} />
      {job.status_reason ? <span class="muted"> {job.status_reason}</span> : null}
      {job.status === "succeeded" && output ? (
        <>
          <div class="mono muted">{output}</div>
          <a class="btn btn-small" href={tokenUrl(`/jobs/${job.id}/download`)} download={`${job.id}.tar`}>
            Download merged model
          </a>
          <button type="button" class="btn btn-small" onClick={() => navigate(`/launch?base=${encodeURIComponent(output)}`)}>
            Use as base model
          </button>
        </>
      ) : null}
    </div>
  );
}

export function Checkpoints({ run, checkpoints, onResume }: { run: Run; checkpoints: Checkpoint[] | null; onResume: (name: string) => void }) {
  const [dialog, ask] = useConfirm();
  // Merge jobs of this run, as the server tracks them (status, reason, result), newest first.
  // Read again every second while one is queued or running.
  const [mergeLive, setMergeLive] = useState(false);
  const mergeList = useApi<Job[]>(`/jobs${qs({ kind: "merge", run_id: run.id })}`, { every: mergeLive ? POLL.live : null });
  const merges = mergeList.data ?? [];
  const anyLive = merges.some((j) => ACTIVE_STATUSES.has(j.status));
  useEffect(() => setMergeLive(anyLive), [anyLive]);
  const mergeOf = (name: string) => merges.find((j) => j.params.checkpoint === name);
  const resumable = canResumeFrom(run);
  const merge = (c: Checkpoint) =>
    ask({
      title: `Merge ${c.name} into a full model?`,
      body: <p>The worker merges the LoRA adapter into the base model and writes an HF model directory.</p>,
      confirmLabel: "Merge and export",
      action: async () => {
        await post<MergeQueued>(`/runs/${run.id}/checkpoints/${c.name}/merge`);
        mergeList.reload();
      },
    });
  return (
    <section class="card" aria-labelledby="ckpt-h">
      <div class="section-head">
        <h2 id="ckpt-h">Checkpoints</h2>
      </div>
      {checkpoints === null ? (
        <p class="muted">Loading…</p>
      ) : checkpoints.length === 0 ? (
        <p class="muted">No checkpoint yet (one every {String(run.config.training?.save_steps ?? "?")} steps).</p>
      ) : (
        <table class="table" data-testid="checkpoints">
          <thead>
            <tr>
              <th>Checkpoint</th>
              <th class="num">Step</th>
              <th>Saved</th>
              <th class="num">Size</th>
              <th class="num">Eval PPL</th>
              <th>
                <span class="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {checkpoints
              .filter((c) => c.exists)
              .map((c) => (
                <tr key={c.name}>
                  <td class="mono">
                    {c.name}
                    {c.attempt > 1 ? <span class="muted small"> (attempt {c.attempt})</span> : null}
                  </td>
                  <td class="num">{int(c.step)}</td>
                  <td>{dateTime(c.created_at)}</td>
                  <td class="num">{bytes(c.size_bytes)}</td>
                  <td class="num">{num(c.eval_perplexity, 4)}</td>
                  <td class="actions">
                    {c.exists ? (
                      <a class="btn btn-small" href={tokenUrl(`/runs/${run.id}/checkpoints/${c.name}/download`)} download={`${run.id}-${c.name}.tar`}>
                        Download
                      </a>
                    ) : null}
                    {c.exists && resumable ? (
                      <button type="button" class="btn btn-small" onClick={() => onResume(c.name)}>
                        Resume from here
                      </button>
                    ) : null}
                    {c.exists && run.method === "lora" ? (
                      <button type="button" class="btn btn-small" onClick={() => merge(c)}>
                        Merge &amp; export
                      </button>
                    ) : null}
                    <MergeState job={mergeOf(c.name)} />
                  </td>
                </tr>
              ))}
            {checkpoints.some((c) => !c.exists) ? (
              <tr class="folded" data-testid="deleted-checkpoints">
                <td colSpan={6}>
                  <details>
                    <summary class="muted small">{checkpoints.filter((c) => !c.exists).length} deleted by the keep limit</summary>
                    <span class="mono small muted">
                      {checkpoints
                        .filter((c) => !c.exists)
                        .map((c) => c.name)
                        .join(", ")}
                    </span>
                  </details>
                </td>
              </tr>
            ) : null}
          </tbody>
        </table>
      )}
      {dialog}
    </section>
  );
}
