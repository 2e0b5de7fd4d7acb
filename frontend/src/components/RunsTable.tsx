// The runs table: the chosen columns, sortable headers (the server sorts), a select box per row
// for Compare. Each cell carries its column's label, so narrow screens can show rows as cards.

import type { ComponentChildren } from "preact";
import { ACTIVE_STATUSES, type Run } from "../api/types";
import { compact, dateTime, DASH, duration, num, remaining, totalSeconds } from "../lib/format";
import { useMe, whyNot, whyNotLaunch } from "../lib/me";
import { columnOf, extraValue, nextSort, type ColumnId } from "../lib/runColumns";
import { runHref } from "../lib/router";
import { Progress } from "./Progress";
import { canCancel, canDelete, canResume, type RunActions } from "./RunActions";
import { StatusBadge } from "./StatusBadge";
import { TagList } from "./TagList";

interface Props {
  items: Run[];
  columns: string[];
  sort: string;
  onSort: (sort: string) => void;
  selected: string[];
  onSelect: (ids: string[]) => void;
  actions: RunActions;
  now: number;
  onTag: (tag: string) => void;
}

function show(value: unknown): string {
  if (value === undefined || value === null) return DASH;
  if (typeof value === "number") return num(value, 4);
  if (Array.isArray(value)) return value.join(", ") || DASH;
  return String(value);
}

function cell(c: ColumnId, r: Run, now: number, onTag: (t: string) => void): ComponentChildren {
  switch (c.id) {
    case "status":
      return <StatusBadge status={r.status} />;
    case "run":
      return (
        <>
          <a href={runHref(r.id)}>{r.name || r.id}</a>
          <div class="muted small mono">{r.id}</div>
          <TagList tags={r.tags} onPick={onTag} />
        </>
      );
    case "owner":
      return r.owner ?? DASH;
    case "method":
      return <span class={`method method-${r.method}`}>{r.method === "lora" ? "LoRA" : "full"}</span>;
    case "model":
      return r.model;
    case "progress":
      return <Progress step={r.step} max={r.max_steps} eta={remaining(r.eta_until, r.eta_seconds, now)} active={ACTIVE_STATUSES.has(r.status)} />;
    case "loss":
      return num(r.loss, 4);
    case "ppl":
      return num(r.perplexity, 4);
    case "tps":
      return compact(r.tokens_per_second);
    case "tokens":
      return compact(r.tokens_seen);
    case "started":
      // A queued run has not started: its creation time is not a start time.
      return dateTime(r.first_started_at ?? r.started_at);
    case "duration":
      return duration(totalSeconds(r, now));
    case "note":
      return (
        <span class="note-cell" title={r.note}>
          {r.note || DASH}
        </span>
      );
    default:
      return show(extraValue(r, c.id));
  }
}

const CELL_CLASS: Record<string, string> = { run: "run-name", model: "ellipsis", started: "nowrap", duration: "nowrap", note: "ellipsis" };

export function RunsTable({ items, columns, sort, onSort, selected, onSelect, actions, now, onTag }: Props) {
  const cols = columns.map(columnOf).filter((c): c is ColumnId => c !== null);
  const me = useMe();
  const pageIds = items.map((r) => r.id);
  const allOnPage = pageIds.length > 0 && pageIds.every((id) => selected.includes(id));
  const toggle = (id: string) => onSelect(selected.includes(id) ? selected.filter((x) => x !== id) : [...selected, id]);
  return (
    <table class="runs-table" data-testid="runs-table">
      <thead>
        <tr>
          <th class="select-col">
            <input
              type="checkbox"
              aria-label="Select every run on this page for comparison"
              checked={allOnPage}
              onChange={() => onSelect(allOnPage ? selected.filter((id) => !pageIds.includes(id)) : [...new Set([...selected, ...pageIds])])}
            />
          </th>
          {cols.map((c) => {
            const dir = sort === c.sort ? "ascending" : sort === `-${c.sort}` ? "descending" : undefined;
            return (
              <th key={c.id} class={c.num ? "num" : undefined} aria-sort={dir ?? (c.sort ? "none" : undefined)} data-column={c.id}>
                {c.sort ? (
                  <button type="button" class="th-sort" onClick={() => onSort(nextSort(sort, c.sort as string))}>
                    {c.label}
                    <span aria-hidden="true" class="sort-mark">
                      {dir === "ascending" ? " ▲" : dir === "descending" ? " ▼" : ""}
                    </span>
                  </button>
                ) : (
                  c.label
                )}
              </th>
            );
          })}
          <th>
            <span class="sr-only">Actions</span>
          </th>
        </tr>
      </thead>
      <tbody>
        {items.map((r) => (
          <tr key={r.id} data-run-id={r.id} data-status={r.status} class={selected.includes(r.id) ? "selected" : undefined}>
            <td class="select-col">
              <input type="checkbox" aria-label={`Select ${r.name || r.id} for comparison`} checked={selected.includes(r.id)} onChange={() => toggle(r.id)} />
            </td>
            {cols.map((c) => (
              <td key={c.id} class={[c.num ? "num" : "", CELL_CLASS[c.id] ?? "", `col-${c.id.replace(/\./g, "-")}`].join(" ").trim()} data-label={c.label} data-column={c.id}>
                {cell(c, r, now, onTag)}
              </td>
            ))}
            <td class="actions">
              {canCancel(r) ? (
                <button type="button" class="btn btn-small" disabled={!!whyNot(me, r.owner)} title={whyNot(me, r.owner) ?? undefined} onClick={() => actions.cancel(r)}>
                  Cancel
                </button>
              ) : null}
              {canResume(r) ? (
                <button type="button" class="btn btn-small" disabled={!!whyNot(me, r.owner)} title={whyNot(me, r.owner) ?? undefined} onClick={() => actions.resume(r)}>
                  Resume
                </button>
              ) : null}
              <button type="button" class="btn btn-small" disabled={!!whyNotLaunch(me)} title={whyNotLaunch(me) ?? undefined} onClick={() => actions.clone(r)}>
                Clone
              </button>
              {canDelete(r) ? (
                <button
                  type="button"
                  class="btn btn-small btn-ghost"
                  disabled={!!whyNot(me, r.owner)}
                  title={whyNot(me, r.owner) ?? undefined}
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
  );
}
