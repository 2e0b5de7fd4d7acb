// Cancel, resume, clone and delete, each behind a confirmation. The run shown afterwards is the
// one the API answered with, so the UI never claims a state the server did not report.

import type { ComponentChildren } from "preact";
import { useState } from "preact/hooks";
import { api, post } from "../api/client";
import { ACTIVE_STATUSES, type Run } from "../api/types";
import { navigate, runHref } from "../lib/router";
import { useConfirm } from "./Confirm";

export interface RunActions {
  dialog: ComponentChildren;
  cancel: (run: Run) => void;
  resume: (run: Run, checkpoint?: string) => void;
  clone: (run: Run) => void;
  remove: (run: Run) => void;
}

export const canCancel = (r: Run) => ACTIVE_STATUSES.has(r.status) && r.status !== "cancelling";
// A succeeded run is finished: resuming it would train past its own end (clone it instead).
export const canResume = (r: Run) => r.status === "failed" || r.status === "cancelled";
export const canDelete = (r: Run) => !ACTIVE_STATUSES.has(r.status);

const label = (r: Run) => r.name || r.id;

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
    resume: (run, checkpoint = "last") =>
      ask({
        title: `Resume ${label(run)}?`,
        body: (
          <p>
            Starts attempt {run.attempt + 1} from <code>{checkpoint === "last" ? "the last checkpoint" : checkpoint}</code>.
          </p>
        ),
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
