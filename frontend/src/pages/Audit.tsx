// The audit log (admins): every change, who made it, from where. Filters by user, action (or
// its prefix, "run."), target and time; exported as JSON Lines with the same filters.

import { useState } from "preact/hooks";
import { ApiError, apiText, qs, saveText } from "../api/client";
import { useApi } from "../api/usePoll";
import type { AuditRow } from "../api/types";
import { dateTime } from "../lib/format";

type Filters = { user: string; action: string; target: string; since: string; until: string };
const EMPTY: Filters = { user: "", action: "", target: "", since: "", until: "" };
const iso = (local: string) => (local ? new Date(local).toISOString() : "");

function query(f: Filters): string {
  return qs({ user: f.user.trim(), action: f.action.trim(), target: f.target.trim(), since: iso(f.since), until: iso(f.until) });
}

export function Audit() {
  const [draft, setDraft] = useState<Filters>(EMPTY);
  const [filters, setFilters] = useState<Filters>(EMPTY);
  const list = useApi<AuditRow[]>(`/audit${query(filters)}`);
  const rows = list.data;
  const [exportError, setError] = useState<string | null>(null);
  const error = exportError ?? list.error;

  const onInput = (key: keyof Filters) => (e: Event) => setDraft({ ...draft, [key]: (e.target as HTMLInputElement).value });
  const field = (key: keyof Filters, label: string, time = false) => (
    // biome-ignore lint/a11y/noLabelWithoutControl: the input is inside, in either branch
    <label class="field">
      <span>{label}</span>
      {time ? <input type="datetime-local" value={draft[key]} onInput={onInput(key)} /> : <input type="text" value={draft[key]} onInput={onInput(key)} />}
    </label>
  );
  const exportLines = async () => {
    try {
      setError(null);
      saveText(await apiText(`/audit/export${query(filters)}`), "audit.jsonl");
    } catch (err) {
      setError(`export failed: ${err instanceof ApiError ? `HTTP ${err.status}` : String(err)}`);
    }
  };

  return (
    <section class="page" data-testid="audit-page">
      <div class="page-head">
        <h1>Audit log</h1>
        <div class="spacer" />
        <button type="button" class="btn" onClick={exportLines}>
          Export JSON Lines
        </button>
      </div>
      <form
        class="card audit-filters"
        aria-label="Filter the audit log"
        onSubmit={(e) => {
          e.preventDefault();
          setFilters(draft);
        }}
      >
        {field("user", "User")}
        {field("action", "Action (or prefix: run.)")}
        {field("target", "Target (run/r-…)")}
        {field("since", "Since", true)}
        {field("until", "Until", true)}
        <button type="submit" class="btn btn-primary">
          Filter
        </button>
      </form>
      {error ? (
        <p class="field-error" role="alert">
          {error}
        </p>
      ) : null}
      {rows === null ? (
        <p class="muted">Loading…</p>
      ) : rows.length === 0 ? (
        <p class="muted">Nothing recorded matches.</p>
      ) : (
        <table class="table audit-table">
          <thead>
            <tr>
              <th>Time</th>
              <th>User</th>
              <th>Action</th>
              <th>Target</th>
              <th>Changes</th>
              <th>Client</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.id} data-action={r.action} data-actor={r.actor}>
                <td class="small">{dateTime(r.at)}</td>
                <td>
                  {r.actor} <span class="muted small">({r.via})</span>
                </td>
                <td>
                  <code>{r.action}</code>
                </td>
                <td>{r.target}</td>
                <td class="small">
                  <code>{Object.keys(r.changes).length ? JSON.stringify(r.changes) : ""}</code>
                </td>
                <td class="small muted">{r.client}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
