// What the training script says it is doing (its last `phase` event) and for how long, so a
// long evaluation or save reads as such instead of as a stalled progress bar.

import { ACTIVE_STATUSES, type Phase as PhaseName, type Run } from "../api/types";
import { duration, parseTime } from "../lib/format";

const LABELS: Record<PhaseName, string> = {
  preparing_data: "preparing data",
  loading_model: "loading model",
  training: "training",
  evaluating: "evaluating",
  saving: "saving checkpoint",
};

export function Phase({ run, now }: { run: Run; now: number }) {
  if (!run.phase || !ACTIVE_STATUSES.has(run.status)) return null;
  const since = parseTime(run.phase_since);
  return (
    <span class={`phase phase-${run.phase}`} data-testid="phase" data-phase={run.phase}>
      {LABELS[run.phase as PhaseName] ?? run.phase}
      {since !== null ? <span class="muted"> · {duration(Math.max(0, (now - since) / 1000))}</span> : null}
    </span>
  );
}
