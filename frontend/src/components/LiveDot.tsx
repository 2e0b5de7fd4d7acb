import type { SseState } from "../api/sse";

/** Whether the page is receiving live updates right now. */
export function LiveDot({ state }: { state: SseState }) {
  const text = state === "live" ? "live" : state === "connecting" ? "connecting…" : "reconnecting…";
  return (
    <span class={`live live-${state}`} role="status" data-testid="live">
      {text}
    </span>
  );
}
