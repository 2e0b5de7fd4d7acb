import { duration } from "../lib/format";

interface Props {
  step: number | null;
  max: number | null;
  eta: number | null;
  active: boolean;
}

/** step/max with a bar; the ETA only while the run is active and the server knows it. */
export function Progress({ step, max, eta, active }: Props) {
  const known = step !== null && max !== null && max > 0;
  const pct = known ? Math.min(100, (100 * (step as number)) / (max as number)) : 0;
  return (
    <div class="progress" title={known ? `${pct.toFixed(1)}%` : "no progress reported yet"}>
      <div class="progress-bar" role="progressbar" aria-valuemin={0} aria-valuemax={max ?? undefined} aria-valuenow={step ?? undefined} aria-label="training progress">
        <div class="progress-fill" style={{ width: `${pct}%` }} />
      </div>
      <span class="progress-text">
        {step ?? 0}/{max ?? "?"}
        {active && eta !== null ? <span class="muted"> · ETA {duration(eta)}</span> : null}
      </span>
    </div>
  );
}
