// Users (admins): create one (a generated password is shown once), change a role or quotas,
// reset a password, disable or enable. Users are never deleted: runs and the audit name them.

import { useState } from "preact/hooks";
import { ApiError, patch, post } from "../api/client";
import type { Role } from "../api/contract";
import type { User, UserCreated } from "../api/types";
import { useApi } from "../api/usePoll";
import { dateTime } from "../lib/format";

const ROLES: Role[] = ["viewer", "operator", "admin"];
const quota = (v: string): number | null => (v.trim() === "" ? null : Number(v));

function Secret({ who, password, onDone }: { who: string; password: string; onDone: () => void }) {
  return (
    <div class="notice" role="status" data-testid="one-time-password">
      <p>
        Password of <strong>{who}</strong>, shown this once: <code>{password}</code>
      </p>
      <button type="button" class="btn btn-small" onClick={onDone}>
        Done
      </button>
    </div>
  );
}

function Row({ user, onChanged, onSecret }: { user: User; onChanged: () => void; onSecret: (u: UserCreated) => void }) {
  const [role, setRole] = useState<Role>(user.role);
  const [live, setLive] = useState(user.max_live_runs?.toString() ?? "");
  const [queued, setQueued] = useState(user.max_queued_runs?.toString() ?? "");
  const [error, setError] = useState<string | null>(null);
  const send = async (body: Record<string, unknown>) => {
    setError(null);
    try {
      const out = await patch<UserCreated>(`/users/${user.name}`, body);
      if (out.password) onSecret(out);
      onChanged();
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    }
  };
  const dirty = role !== user.role || quota(live) !== user.max_live_runs || quota(queued) !== user.max_queued_runs;
  return (
    <tr data-user={user.name} class={user.active ? undefined : "muted"}>
      <td>{user.name}</td>
      <td>
        <select aria-label={`Role of ${user.name}`} value={role} onChange={(e) => setRole((e.target as HTMLSelectElement).value as Role)}>
          {ROLES.map((r) => (
            <option key={r} value={r}>
              {r}
            </option>
          ))}
        </select>
      </td>
      <td>
        <input class="num-input" type="number" min={0} aria-label={`Live runs of ${user.name}`} placeholder="no limit" value={live} onInput={(e) => setLive((e.target as HTMLInputElement).value)} />
      </td>
      <td>
        <input
          class="num-input"
          type="number"
          min={0}
          aria-label={`Queued runs of ${user.name}`}
          placeholder="no limit"
          value={queued}
          onInput={(e) => setQueued((e.target as HTMLInputElement).value)}
        />
      </td>
      <td>{user.active ? "active" : "disabled"}</td>
      <td class="muted small">{dateTime(user.created_at)}</td>
      <td class="actions">
        <button type="button" class="btn btn-small" disabled={!dirty} onClick={() => send({ role, max_live_runs: quota(live), max_queued_runs: quota(queued) })}>
          Save
        </button>
        <button type="button" class="btn btn-small" onClick={() => send({ reset_password: true })}>
          Reset password
        </button>
        <button type="button" class="btn btn-small btn-ghost" onClick={() => send({ active: !user.active })}>
          {user.active ? "Disable" : "Enable"}
        </button>
        {error ? (
          <p class="field-error" role="alert">
            {error}
          </p>
        ) : null}
      </td>
    </tr>
  );
}

export function Users() {
  const list = useApi<User[]>("/users");
  const users = list.data;
  const load = list.reload;
  const [name, setName] = useState("");
  const [role, setRole] = useState<Role>("operator");
  const [error, setError] = useState<string | null>(null);
  const [secret, setSecret] = useState<UserCreated | null>(null);

  const create = async (e: Event) => {
    e.preventDefault();
    setError(null);
    try {
      const made = await post<UserCreated>("/users", { name: name.trim(), role });
      setSecret(made);
      setName("");
      load();
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    }
  };

  return (
    <section class="page" data-testid="users-page">
      <div class="page-head">
        <h1>Users</h1>
      </div>
      <form class="card" onSubmit={create} aria-label="New user">
        <h2>New user</h2>
        <label class="field">
          <span>Name</span>
          <input value={name} required pattern="[a-z][a-z0-9_.\-]{1,31}" onInput={(e) => setName((e.target as HTMLInputElement).value)} />
        </label>
        <label class="field">
          <span>Role</span>
          <select value={role} onChange={(e) => setRole((e.target as HTMLSelectElement).value as Role)}>
            {ROLES.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </label>
        <p class="muted small">Viewers read; operators also launch and change their own runs and jobs; admins do everything.</p>
        {(error ?? list.error) ? (
          <p class="field-error" role="alert">
            {error ?? list.error}
          </p>
        ) : null}
        <button type="submit" class="btn btn-primary" disabled={!name.trim()}>
          Create user
        </button>
      </form>
      {secret?.password ? <Secret who={secret.name} password={secret.password} onDone={() => setSecret(null)} /> : null}
      {users === null ? (
        <p class="muted">Loading…</p>
      ) : (
        <table class="table users-table">
          <thead>
            <tr>
              <th>Name</th>
              <th>Role</th>
              <th>Live runs (quota)</th>
              <th>Queued runs (quota)</th>
              <th>State</th>
              <th>Created</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {users.map((u) => (
              <Row key={`${u.name}-${u.role}-${u.active}-${u.max_live_runs}-${u.max_queued_runs}`} user={u} onChanged={load} onSecret={setSecret} />
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
