// Human-readable numbers, sizes and times. "–" stands for unknown, never a made-up value.

import { ACTIVE_STATUSES, type RunStatus } from "../api/contract";

export const DASH = "–";

export function num(v: number | null | undefined, digits = 3): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return DASH;
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(2);
  return Number(v.toPrecision(digits)).toLocaleString("en-US", { maximumFractionDigits: 6 });
}

export function int(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return DASH;
  return Math.round(v).toLocaleString("en-US");
}

/** 1234567 -> "1.23M" (tokens, tokens/s). */
export function compact(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return DASH;
  return Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 2 }).format(v);
}

export function bytes(v: number | null | undefined): string {
  if (v === null || v === undefined) return DASH;
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  let x = v;
  while (x >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return `${x.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

/** Seconds -> "1h 02m", "3m 05s", "12s". */
export function duration(sec: number | null | undefined): string {
  if (sec === null || sec === undefined || !Number.isFinite(sec) || sec < 0) return DASH;
  const s = Math.round(sec);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  if (h > 0) return `${h}h ${String(m).padStart(2, "0")}m`;
  if (m > 0) return `${m}m ${String(r).padStart(2, "0")}s`;
  return `${r}s`;
}

/** The API sends ISO-8601 UTC; some stores drop the zone, which must still mean UTC. */
export function parseTime(iso: string | null | undefined): number | null {
  if (!iso) return null;
  const t = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(iso) ? iso : `${iso}Z`);
  return Number.isNaN(t) ? null : t;
}

export function dateTime(iso: string | null | undefined): string {
  const t = parseTime(iso);
  if (t === null) return DASH;
  const d = new Date(t);
  const today = new Date();
  const time = d.toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  if (d.toDateString() === today.toDateString()) return time;
  return `${d.toLocaleDateString("en-CA")} ${time}`;
}

/** Elapsed seconds of a run: to its end, or to now while it runs. */
export function runSeconds(started: string | null, finished: string | null, now = Date.now()): number | null {
  const s = parseTime(started);
  if (s === null) return null;
  const f = parseTime(finished) ?? now;
  return Math.max(0, (f - s) / 1000);
}

/** Seconds over all attempts: the ended ones (server-measured) plus the running one's clock. */
export function totalSeconds(
  run: {
    status: string;
    started_at: string | null;
    finished_at: string | null;
    attempts_seconds?: number;
    duration_seconds?: number | null;
  },
  now = Date.now(),
): number | null {
  if (run.attempts_seconds === undefined) return run.duration_seconds ?? runSeconds(run.started_at, run.finished_at, now);
  // A worker holds the attempt (active, but not waiting in the queue).
  const running = ACTIVE_STATUSES.has(run.status as RunStatus) && run.status !== "queued";
  const current = running ? runSeconds(run.started_at, null, now) : null;
  if (current === null) return run.duration_seconds ?? (run.attempts_seconds || null);
  return run.attempts_seconds + current;
}

/** Seconds until ``until`` (≥ 0), else the server's figure as it was sent. */
export function remaining(until: string | null | undefined, fallback: number | null, now = Date.now()): number | null {
  const t = parseTime(until);
  return t === null ? fallback : Math.max(0, (t - now) / 1000);
}

export function ago(iso: string | null | undefined, now = Date.now()): string {
  const t = parseTime(iso);
  if (t === null) return DASH;
  // Clocks of two machines differ a little: a time "in the future" is just now.
  return now - t < 1000 ? "just now" : `${duration((now - t) / 1000)} ago`;
}
