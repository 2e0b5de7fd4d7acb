// Runs list: paged from the API (so 1,000 runs cost one page of rows), patched live by the
// `run` SSE stream, filtered by status on the server.

import { useEffect, useRef, useState } from "preact/hooks";
import { api, qs } from "../api/client";
import { subscribe, type SseState } from "../api/sse";
import { ALL_STATUSES, type Run, type RunPage, type RunStatus } from "../api/types";
import { ColumnChooser } from "../components/ColumnChooser";
import { LiveDot } from "../components/LiveDot";
import { useRunActions } from "../components/RunActions";
import { RunsTable } from "../components/RunsTable";
import { loadColumns, saveColumns } from "../lib/runColumns";
import { useNow } from "../lib/useNow";

const PAGE = 50;

/** Filters live in the URL (#/runs?status=failed&q=lora&tag=kn&sort=-loss&offset=50): shareable,
 * and kept on Back. */
function fromQuery(query: URLSearchParams): { statuses: RunStatus[]; q: string; tags: string[]; sort: string; offset: number } {
  const statuses = (query.get("status") ?? "").split(",").filter((s): s is RunStatus => ALL_STATUSES.includes(s as RunStatus));
  const tags = (query.get("tag") ?? "").split(",").filter(Boolean);
  return { statuses, q: query.get("q") ?? "", tags, sort: query.get("sort") ?? "", offset: Math.max(0, Number(query.get("offset")) || 0) };
}

export function Runs({ query: initial }: { query: URLSearchParams }) {
  const start = fromQuery(initial);
  const [statuses, setStatuses] = useState<RunStatus[]>(start.statuses);
  const [q, setQ] = useState(start.q);
  const [tags, setTags] = useState<string[]>(start.tags);
  const [sort, setSort] = useState(start.sort);
  const [columns, setColumnsState] = useState<string[]>(loadColumns);
  const setColumns = (ids: string[]) => {
    saveColumns(ids);
    setColumnsState(ids);
  };
  const [offset, setOffset] = useState(start.offset);
  const [page, setPage] = useState<RunPage | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [live, setLive] = useState<SseState>("connecting");
  const [selected, setSelected] = useState<string[]>([]);
  const now = useNow();
  const query = useRef({ statuses, q, tags, sort, offset });
  query.current = { statuses, q, tags, sort, offset };
  const refetchTimer = useRef<number | undefined>(undefined);

  // A new #/runs?… while this page is mounted (a link, the Runs tab, Back, an edited address):
  // the filters follow it. Each hashchange parses a new query object; our own replaceState
  // below fires none, so typing is not undone.
  const mountedQuery = useRef(initial);
  useEffect(() => {
    if (mountedQuery.current === initial) return;
    mountedQuery.current = initial;
    const next = fromQuery(initial);
    setStatuses(next.statuses);
    setQ(next.q);
    setTags(next.tags);
    setSort(next.sort);
    setOffset(next.offset);
  }, [initial]);

  const load = async () => {
    const asked = query.current;
    try {
      const p = await api<RunPage>(`/runs${qs({ status: asked.statuses, q: asked.q, tag: asked.tags, sort: asked.sort, limit: PAGE, offset: asked.offset })}`);
      // A stale answer for an older filter must not overwrite the current one.
      if (JSON.stringify(query.current) === JSON.stringify(asked)) {
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
    if (tags.length) params.set("tag", tags.join(","));
    if (sort) params.set("sort", sort);
    if (offset) params.set("offset", String(offset));
    const hash = `#/runs${params.size ? `?${params}` : ""}`;
    // replaceState: no hashchange, so the page is not re-mounted while typing.
    if (location.hash !== hash) history.replaceState(null, "", hash);
  }, [statuses, q, tags, sort, offset]);

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
  const addTag = (tag: string) => {
    setOffset(0);
    setTags((cur) => (cur.includes(tag) ? cur : [...cur, tag]));
  };
  const metricKeys = [...new Set((page?.items ?? []).flatMap((r) => Object.keys(r.metrics_summary ?? {})))];

  const total = page?.total ?? 0;
  return (
    <section class="page">
      <div class="page-head">
        <h1>Runs</h1>
        <LiveDot state={live} />
        <div class="spacer" />
        <a
          class={`btn${selected.length < 2 ? " disabled" : ""}`}
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
          <button key={s} type="button" class={`chip chip-${s}`} aria-pressed={statuses.includes(s)} onClick={() => toggleStatus(s)}>
            {s}
          </button>
        ))}
        {tags.map((t) => (
          <button key={t} type="button" class="chip tag-filter" aria-pressed="true" onClick={() => setTags(tags.filter((x) => x !== t))} title="Remove this tag filter">
            tag: {t} ×
          </button>
        ))}
        <ColumnChooser columns={columns} metricKeys={metricKeys} onChange={setColumns} />
        <label class="search">
          <span class="sr-only">Search runs</span>
          <input
            type="search"
            placeholder="Search name, id, model, tag, note…"
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
        <RunsTable
          items={page?.items ?? []}
          columns={columns}
          sort={sort}
          onSort={(next) => {
            setOffset(0);
            setSort(next);
          }}
          selected={selected}
          onSelect={setSelected}
          actions={actions}
          now={now}
          onTag={addTag}
        />
        {page && page.items.length === 0 ? (
          <p class="empty">
            {statuses.length || q || tags.length ? "No run matches this filter." : "No runs yet. "}
            {statuses.length || q || tags.length ? null : <a href="#/launch">Launch one.</a>}
          </p>
        ) : null}
        {!page && !error ? <p class="empty muted">Loading…</p> : null}
      </div>
      <div class="pager">
        <span data-testid="pager-text">{total === 0 ? "0 runs" : `${offset + 1}–${Math.min(offset + PAGE, total)} of ${total}`}</span>
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
