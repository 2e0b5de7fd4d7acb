// The audit log (admins): every change, who made it, from where. Filters by user, action (or
// its prefix, "run."), target and time; exported as JSON Lines with the same filters.

import { useEffect, useState } from "preact/hooks";
import { api, getToken, qs, saveText } from "../api/client";
import { dateTime } from "../lib/format";

interface Row {
  id: number;
  at: string;
  actor: string;
  via: string;
  client: string;
  action: string;
  target: string;
  changes: Record<string, unknown>;
}

type Filters = { user: string; action: string; target: string; since: string; until: string };
const EMPTY: Filters = { user: "", action: "", target: "", since: "", until: "" };
const iso = (local: string) => (local ? new Date(local).toISOString() : "");

function query(f: Filters): string {
  return qs({ user: f.user.trim(), action: f.action.trim(), target: f.target.trim(), since: iso(f.since), until: iso(f.until) });
}

export function Audit() {
  const [draft, setDraft] = useState<Filters>(EMPTY);
  const [filters, setFilters] = useState<Filters>(EMPTY);
  const [rows, setRows] = useState<Row[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    setError(null);
    api<Row[]>(`/audit${query(filters)}`)
      .then(setRows)
      .catch((err) => setError(String(err)));
  }, [filters]);

  const onInput = (key: keyof Filters) => (e: Event) => setDraft({ ...draft, [key]: (e.target as HTMLInputElement).value });
  const field = (key: keyof Filters, label: string, time = false) => (
    <label class="field">
      <span>{label}</span>
      {time ? <input type="datetime-local" value={draft[key]} onInput={onInput(key)} /> : <input type="text" value={draft[key]} onInput={onInput(key)} />}
    </label>
  );
  const exportLines = async () => {
    const headers: Record<string, string> = {};
    const token = getToken();
    if (token) headers.Authorization = `Bearer ${token}`;
    const res = await fetch(`/api/audit/export${query(filters)}`, { headers });
    if (res.ok) saveText(await res.text(), "audit.jsonl");
    else setError(`export failed: HTTP ${res.status}`);
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
