// Cancel, resume, clone and delete, each behind a confirmation. The run shown afterwards is the
// one the API answered with, so the UI never claims a state the server did not report.

import type { ComponentChildren } from "preact";
import { useState } from "preact/hooks";
import { api, post } from "../api/client";
import { LAST_CHECKPOINT, RESUMABLE_STATUSES, RESUME_LAST_STATUSES } from "../api/contract";
import { ACTIVE_STATUSES, type Checkpoint, type Run } from "../api/types";
import { useApi } from "../api/usePoll";
import { ago, dateTime, num } from "../lib/format";
import { navigate, runHref } from "../lib/router";
import { useConfirm } from "./Confirm";

export interface RunActions {
  dialog: ComponentChildren;
  cancel: (run: Run) => void;
  resume: (run: Run, checkpoint?: string, checkpoints?: Checkpoint[] | null) => void;
  clone: (run: Run) => void;
  remove: (run: Run) => void;
}

export const canCancel = (r: Run) => ACTIVE_STATUSES.has(r.status) && r.status !== "cancelling";
// From the newest checkpoint: only a run that did not finish (cpt_contract/statuses.py) and
// has a checkpoint on disk: the run page's list when it has one, else the API's has_checkpoint.
export const canResume = (r: Run, checkpoints?: Checkpoint[] | null) => RESUME_LAST_STATUSES.has(r.status) && (checkpoints ? checkpoints.some((c) => c.exists) : r.has_checkpoint === true);
// From a chosen checkpoint (the Checkpoints panel): any finished run.
export const canResumeFrom = (r: Run) => RESUMABLE_STATUSES.has(r.status);
export const canDelete = (r: Run) => !ACTIVE_STATUSES.has(r.status);

const label = (r: Run) => r.name || r.id;

/** The checkpoint a resume starts from: the named one, or for "last" the newest on disk. */
export function resumeTarget(checkpoints: Checkpoint[], name: string): Checkpoint | null {
  if (name !== LAST_CHECKPOINT) return checkpoints.find((c) => c.name === name) ?? null;
  const onDisk = checkpoints.filter((c) => c.exists);
  return [...onDisk].sort((a, b) => (b.step ?? 0) - (a.step ?? 0))[0] ?? null;
}

/** Names the checkpoint, its step, its evaluation and its age (fetched when not given). */
function ResumeBody({ run, name, given }: { run: Run; name: string; given?: Checkpoint[] | null }) {
  const read = useApi<Checkpoint[]>(given ? null : `/runs/${run.id}/checkpoints`);
  // A failed read shows the checkpoint by name (as for an empty list), not "…" for ever.
  const list = given ?? read.data ?? (read.error ? [] : null);
  const c = list ? resumeTarget(list, name) : null;
  const evalText = c && (c.eval_loss !== null || c.eval_perplexity !== null) ? `eval loss ${num(c.eval_loss, 4)} · perplexity ${num(c.eval_perplexity, 4)}` : "no evaluation at this step";
  return (
    <div data-testid="resume-target" data-checkpoint={c?.name ?? ""}>
      <p>
        Starts attempt {run.attempt + 1} from{" "}
        {c ? (
          <>
            <code>{c.name}</code> (step {c.step}
            {run.max_steps ? ` of ${run.max_steps}` : ""})
          </>
        ) : list === null ? (
          "…"
        ) : (
          <code>{name === "last" ? "the last checkpoint" : name}</code>
        )}
        .
      </p>
      {c ? (
        <p class="muted small">
          {evalText} · saved {ago(c.created_at)} ({dateTime(c.created_at)}) by attempt {c.attempt}
        </p>
      ) : null}
    </div>
  );
}

function CloneName({ initial, onChange }: { initial: string; onChange: (v: string) => void }) {
  const [v, setV] = useState(initial);
  return (
    <label class="field">
      <span>Name of the copy</span>
      <input
        value={v}
        onInput={(e) => {
          const value = (e.target as HTMLInputElement).value;
          setV(value);
          onChange(value);
        }}
      />
    </label>
  );
}

export function useRunActions(onUpdate: (run: Run) => void, onDeleted?: (id: string) => void): RunActions {
  const [dialog, ask] = useConfirm();
  return {
    dialog,
    cancel: (run) =>
      ask({
        title: `Cancel ${label(run)}?`,
        body: <p>The training process is stopped; checkpoints already written are kept.</p>,
        confirmLabel: "Cancel run",
        danger: true,
        action: async () => onUpdate(await post<Run>(`/runs/${run.id}/cancel`)),
      }),
    resume: (run, checkpoint = "last", checkpoints) =>
      ask({
        title: `Resume ${label(run)}?`,
        body: <ResumeBody run={run} name={checkpoint} given={checkpoints} />,
        confirmLabel: "Resume",
        action: async () => onUpdate(await post<Run>(`/runs/${run.id}/resume`, { checkpoint })),
      }),
    clone: (run) => {
      let name = `${label(run)} (copy)`;
      ask({
        title: `Clone ${label(run)}?`,
        body: (
          <>
            <p>Queues a new run with the same config.</p>
            <CloneName initial={name} onChange={(v) => (name = v)} />
          </>
        ),
        confirmLabel: "Clone and queue",
        action: async () => {
          const created = await post<Run>(`/runs/${run.id}/clone`, { name });
          navigate(runHref(created.id));
        },
      });
    },
    remove: (run) =>
      ask({
        title: `Delete ${label(run)}?`,
        body: <p>The run's record, metrics and logs are removed.</p>,
        confirmLabel: "Delete",
        danger: true,
        action: async () => {
          await api(`/runs/${run.id}`, { method: "DELETE" });
          onDeleted?.(run.id);
        },
      }),
  };
}
