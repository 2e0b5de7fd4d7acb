import type { RunStatus } from "../api/types";

/** The status exactly as the server reported it; colour and animation come from CSS. */
export function StatusBadge({ status }: { status: RunStatus }) {
  return (
    <span class={`badge badge-${status}`} data-status={status}>
      {status}
    </span>
  );
}
