// The API client, the one place the UI calls fetch: adds the bearer token (or, for a signed-in
// browser session, the CSRF header on writes), turns non-2xx answers into ApiError. Components
// read through api/usePoll.ts (useApi) and act through `api`/`post`/`patch`.

import { CSRF_COOKIE, CSRF_HEADER } from "./contract";
import type { ValidationItem } from "./types";

const TOKEN_KEY = "cpt-panel-token";

export function getToken(): string | null {
  return localStorage.getItem(TOKEN_KEY);
}

export function setToken(token: string | null): void {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

/** The session's CSRF token (a readable cookie, set at sign-in): present while signed in. */
export function csrfToken(): string | null {
  for (const part of document.cookie.split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === CSRF_COOKIE) return decodeURIComponent(v.join("="));
  }
  return null;
}

/** Signed in by a token (kept in localStorage) or by name and password (a session cookie). */
export const isSignedIn = (): boolean => !!getToken() || !!csrfToken();

/** Forget the browser's session cookies we can reach (the HttpOnly one dies server-side). */
export function forgetSession(): void {
  // biome-ignore lint/suspicious/noDocumentCookie: expiring the one cookie the page can reach
  document.cookie = `${CSRF_COOKIE}=; Max-Age=0; Path=/; SameSite=Strict`;
}

const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly detail: unknown,
  ) {
    super(describeDetail(status, detail));
  }

  /** The 422 items, when the server sent FastAPI's list shape. */
  get validation(): ValidationItem[] {
    return Array.isArray(this.detail) ? (this.detail as ValidationItem[]) : [];
  }
}

function describeDetail(status: number, detail: unknown): string {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) return detail.map((d: ValidationItem) => `${d.loc.join(".")}: ${d.msg}`).join("; ");
  return `HTTP ${status}`;
}

/** A read aborted on purpose (an unmount, a newer read): not an error to show. */
export function isAbort(err: unknown): boolean {
  return err instanceof DOMException && err.name === "AbortError";
}

/** Called on any 401 so the app can send the user to the login page. */
let onUnauthorized: () => void = () => {};
export function setUnauthorizedHandler(fn: () => void): void {
  onUnauthorized = fn;
}

export async function api<T>(path: string, init: RequestInit & { json?: unknown } = {}, token = getToken()): Promise<T> {
  const res = await request(path, init, token);
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

/** The answer's body as text (an export), with the same headers and errors as `api`. */
export async function apiText(path: string, init: RequestInit = {}): Promise<string> {
  return (await request(path, init, getToken())).text();
}

async function request(path: string, init: RequestInit & { json?: unknown }, token: string | null): Promise<Response> {
  const headers = new Headers(init.headers);
  if (token) headers.set("Authorization", `Bearer ${token}`);
  else if (UNSAFE.has((init.method ?? "GET").toUpperCase())) {
    const csrf = csrfToken();
    if (csrf) headers.set(CSRF_HEADER, csrf);
  }
  let body = init.body;
  if (init.json !== undefined) {
    headers.set("Content-Type", "application/json");
    body = JSON.stringify(init.json);
  }
  const res = await fetch(`/api${path}`, { ...init, headers, body });
  if (res.status === 401) onUnauthorized();
  if (!res.ok) {
    let detail: unknown = res.statusText;
    try {
      detail = (await res.json()).detail;
    } catch {
      /* not JSON: keep the status text */
    }
    throw new ApiError(res.status, detail);
  }
  return res;
}

export const post = <T>(path: string, json: unknown = {}) => api<T>(path, { method: "POST", json });
export const patch = <T>(path: string, json: unknown = {}) => api<T>(path, { method: "PATCH", json });

/** Query string from a record, skipping empty values; arrays repeat the key. */
export function qs(params: Record<string, string | number | string[] | null | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === null || v === undefined || v === "") continue;
    if (Array.isArray(v)) {
      for (const item of v) q.append(k, item);
    } else q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

/** A URL the browser opens itself (downloads, EventSource), which cannot carry headers (a
 *  signed-in session's cookie goes along by itself). */
export function tokenUrl(path: string): string {
  if (!getToken()) return `/api${path}`;
  const sep = path.includes("?") ? "&" : "?";
  return `/api${path}${sep}token=${encodeURIComponent(getToken() ?? "")}`;
}

/** Offer text the page already holds as a file download. */
export function saveText(text: string, filename: string): void {
  const url = URL.createObjectURL(new Blob([text], { type: "text/plain;charset=utf-8" }));
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}
