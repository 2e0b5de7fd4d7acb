// Runs list: paged from the API (so 1,000 runs cost one page of rows), patched live by the
// `run` SSE stream, filtered by status on the server.

import { useEffect, useRef, useState } from "preact/hooks";
import { api, qs } from "../api/client";
import { subscribe, type SseState } from "../api/sse";
import { ACTIVE_STATUSES, ALL_STATUSES, type Run, type RunPage, type RunStatus } from "../api/types";
import { LiveDot } from "../components/LiveDot";
import { Progress } from "../components/Progress";
import { canCancel, canDelete, canResume, useRunActions } from "../components/RunActions";
import { StatusBadge } from "../components/StatusBadge";
import { compact, dateTime, duration, num, runSeconds } from "../lib/format";
import { runHref } from "../lib/router";
import { useNow } from "../lib/useNow";

const PAGE = 50;

/** Filters live in the URL (#/runs?status=failed&q=lora&offset=50): shareable, and kept on Back. */
function fromQuery(query: URLSearchParams): { statuses: RunStatus[]; q: string; offset: number } {
  const statuses = (query.get("status") ?? "").split(",").filter((s): s is RunStatus => ALL_STATUSES.includes(s as RunStatus));
  return { statuses, q: query.get("q") ?? "", offset: Math.max(0, Number(query.get("offset")) || 0) };
}

export function Runs({ query: initial }: { query: URLSearchParams }) {
  const start = fromQuery(initial);
  const [statuses, setStatuses] = useState<RunStatus[]>(start.statuses);
  const [q, setQ] = useState(start.q);
  const [offset, setOffset] = useState(start.offset);
  const [page, setPage] = useState<RunPage | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [live, setLive] = useState<SseState>("connecting");
  const [selected, setSelected] = useState<string[]>([]);
  const now = useNow();
  const query = useRef({ statuses, q, offset });
  query.current = { statuses, q, offset };
  const refetchTimer = useRef<number | undefined>(undefined);

  const load = async () => {
    const { statuses: s, q: text, offset: off } = query.current;
    try {
      const p = await api<RunPage>(`/runs${qs({ status: s, q: text, limit: PAGE, offset: off })}`);
      // A stale answer for an older filter must not overwrite the current one.
      if (query.current.statuses === s && query.current.q === text && query.current.offset === off) {
        setPage(p);
        setError(null);
      }
    } catch (err) {
      setError(String(err));
    }
  };
  const loadSoon = () => {
    window.clearTimeout(refetchTimer.current);
    refetchTimer.current = window.setTimeout(load, 400);
  };

  useEffect(() => {
    load();
    const params = new URLSearchParams();
    if (statuses.length) params.set("status", statuses.join(","));
    if (q) params.set("q", q);
    if (offset) params.set("offset", String(offset));
    const hash = `#/runs${params.size ? `?${params}` : ""}`;
    // replaceState: no hashchange, so the page is not re-mounted while typing.
    if (location.hash !== hash) history.replaceState(null, "", hash);
  }, [statuses, q, offset]);

  const patch = (run: Run) =>
    setPage((p) => {
      if (!p) return p;
      const i = p.items.findIndex((r) => r.id === run.id);
      if (i < 0) {
        loadSoon(); // a run this page has not seen: the server decides where it belongs
        return p;
      }
      const items = p.items.slice();
      items[i] = run;
      return { ...p, items };
    });

  useEffect(
    () =>
      subscribe("/runs/stream", {
        handlers: { run: patch },
        onOpen: (first) => !first && load(),
        onState: setLive,
      }),
    [],
  );

  const actions = useRunActions(patch, () => load());

  const toggleStatus = (s: RunStatus) => {
    setOffset(0);
    setStatuses((cur) => (cur.includes(s) ? cur.filter((x) => x !== s) : [...cur, s]));
  };
  const toggleSelected = (id: string) =>
    setSelected((cur) => (cur.includes(id) ? cur.filter((x) => x !== id) : [...cur, id]));

  const total = page?.total ?? 0;
  return (
    <section class="page">
      <div class="page-head">
        <h1>Runs</h1>
        <LiveDot state={live} />
        <div class="spacer" />
        <a
          class={"btn" + (selected.length < 2 ? " disabled" : "")}
          href={selected.length >= 2 ? `#/compare?ids=${selected.join(",")}` : undefined}
          aria-disabled={selected.length < 2}
          data-testid="compare-selected"
        >
          Compare selected ({selected.length})
        </a>
        <a class="btn btn-primary" href="#/launch">
          New run
        </a>
      </div>
      <div class="filters" role="group" aria-label="Filter by status">
        <button type="button" class="chip" aria-pressed={statuses.length === 0} onClick={() => setStatuses([])}>
          all
        </button>
        {ALL_STATUSES.map((s) => (
          <button
            key={s}
            type="button"
            class={`chip chip-${s}`}
            aria-pressed={statuses.includes(s)}
            onClick={() => toggleStatus(s)}
          >
            {s}
          </button>
        ))}
        <label class="search">
          <span class="sr-only">Search runs</span>
          <input
            type="search"
            placeholder="Search name, id, model…"
            value={q}
            onInput={(e) => {
              setOffset(0);
              setQ((e.target as HTMLInputElement).value);
            }}
          />
        </label>
      </div>
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : null}
      <div class="table-wrap">
        <table class="runs-table" data-testid="runs-table">
          <thead>
            <tr>
              <th>
                <span class="sr-only">Select for comparison</span>
              </th>
              <th>Status</th>
              <th>Run</th>
              <th>Method</th>
              <th>Model</th>
              <th>Progress</th>
              <th class="num">Loss</th>
              <th class="num">PPL</th>
              <th class="num">Tok/s</th>
              <th>Started</th>
              <th>Duration</th>
              <th>
                <span class="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {page?.items.map((r) => (
              <tr key={r.id} data-run-id={r.id} data-status={r.status}>
                <td>
                  <input
                    type="checkbox"
                    aria-label={`Select ${r.name || r.id} for comparison`}
                    checked={selected.includes(r.id)}
                    onChange={() => toggleSelected(r.id)}
                  />
                </td>
                <td>
                  <StatusBadge status={r.status} />
                </td>
                <td class="run-name">
                  <a href={runHref(r.id)}>{r.name || r.id}</a>
                  <div class="muted small mono">{r.id}</div>
                </td>
                <td>
                  <span class={`method method-${r.method}`}>{r.method === "lora" ? "LoRA" : "full"}</span>
                </td>
                <td class="ellipsis" title={r.model}>
                  {r.model}
                </td>
                <td>
                  <Progress step={r.step} max={r.max_steps} eta={r.eta_seconds} active={ACTIVE_STATUSES.has(r.status)} />
                </td>
                <td class="num">{num(r.loss, 4)}</td>
                <td class="num">{num(r.perplexity, 4)}</td>
                <td class="num">{compact(r.tokens_per_second)}</td>
                <td class="nowrap">{dateTime(r.started_at ?? r.created_at)}</td>
                <td class="nowrap">{duration(runSeconds(r.started_at, r.finished_at, now))}</td>
                <td class="actions">
                  {canCancel(r) ? (
                    <button type="button" class="btn btn-small" onClick={() => actions.cancel(r)}>
                      Cancel
                    </button>
                  ) : null}
                  {canResume(r) && r.status !== "succeeded" ? (
                    <button type="button" class="btn btn-small" onClick={() => actions.resume(r)}>
                      Resume
                    </button>
                  ) : null}
                  <button type="button" class="btn btn-small" onClick={() => actions.clone(r)}>
                    Clone
                  </button>
                  {canDelete(r) ? (
                    <button
                      type="button"
                      class="btn btn-small btn-ghost"
                      onClick={() => actions.remove(r)}
                      aria-label={`Delete ${r.name || r.id}`}
                    >
                      Delete
                    </button>
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {page && page.items.length === 0 ? (
          <p class="empty">
            {statuses.length || q ? "No run matches this filter." : "No runs yet. "}
            {statuses.length || q ? null : <a href="#/launch">Launch one.</a>}
          </p>
        ) : null}
        {!page && !error ? <p class="empty muted">Loading…</p> : null}
      </div>
      <div class="pager">
        <span data-testid="pager-text">
          {total === 0 ? "0 runs" : `${offset + 1}–${Math.min(offset + PAGE, total)} of ${total}`}
        </span>
        <button type="button" class="btn btn-small" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE))}>
          Previous
        </button>
        <button type="button" class="btn btn-small" disabled={offset + PAGE >= total} onClick={() => setOffset(offset + PAGE)}>
          Next
        </button>
      </div>
      {actions.dialog}
    </section>
  );
}
