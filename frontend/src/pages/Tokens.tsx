// Personal API tokens (each user's own; an admin sees everyone's): for the CLI and scripts.
// A new token is shown once; only its hash is kept.

import { useState } from "preact/hooks";
import { ApiError, api, post } from "../api/client";
import type { Token, TokenCreated } from "../api/types";
import { useApi } from "../api/usePoll";
import { dateTime } from "../lib/format";
import { CopyButton } from "../components/CopyButton";

export function Tokens() {
  const list = useApi<Token[]>("/tokens");
  const tokens = list.data;
  const [name, setName] = useState("");
  const [days, setDays] = useState("90");
  const [made, setMade] = useState<TokenCreated | null>(null);
  const [error, setError] = useState<string | null>(null);

  const create = async (e: Event) => {
    e.preventDefault();
    setError(null);
    try {
      setMade(await post<TokenCreated>("/tokens", { name: name.trim(), expires_in_days: Number(days) }));
      setName("");
      list.reload();
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    }
  };
  const revoke = async (t: Token) => {
    try {
      await api(`/tokens/${t.id}`, { method: "DELETE" });
      list.reload();
    } catch (err) {
      setError(String(err));
    }
  };

  return (
    <section class="page" data-testid="tokens-page">
      <div class="page-head">
        <h1>API tokens</h1>
      </div>
      <form class="card" onSubmit={create} aria-label="New token">
        <p class="muted">
          For the CLI and scripts: <code>CPT_API_TOKEN=&lt;token&gt; cpt-panel runs list</code>. A token acts as you, with your role.
        </p>
        <label class="field">
          <span>Token name</span>
          <input value={name} required maxLength={64} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
        </label>
        <label class="field">
          <span>Expires in (days)</span>
          <input type="number" min={1} max={366} value={days} onInput={(e) => setDays((e.target as HTMLInputElement).value)} />
        </label>
        {(error ?? list.error) ? (
          <p class="field-error" role="alert">
            {error ?? list.error}
          </p>
        ) : null}
        <button type="submit" class="btn btn-primary" disabled={!name.trim()}>
          Create token
        </button>
      </form>
      {made?.token ? (
        <div class="notice" role="status" data-testid="new-token">
          <p>
            Token <strong>{made.name}</strong>, shown this once: <code>{made.token}</code> <CopyButton text={made.token} />
          </p>
          <button type="button" class="btn btn-small" onClick={() => setMade(null)}>
            Done
          </button>
        </div>
      ) : null}
      {tokens === null ? (
        <p class="muted">Loading…</p>
      ) : tokens.length === 0 ? (
        <p class="muted">No tokens yet.</p>
      ) : (
        <table class="table tokens-table">
          <thead>
            <tr>
              <th>Name</th>
              <th>User</th>
              <th>Created</th>
              <th>Expires</th>
              <th>State</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {tokens.map((t) => (
              <tr key={t.id} data-token={t.name}>
                <td>{t.name}</td>
                <td>{t.user}</td>
                <td class="small">{dateTime(t.created_at)}</td>
                <td class="small">{dateTime(t.expires_at)}</td>
                <td>{t.revoked_at ? `revoked ${dateTime(t.revoked_at)}` : new Date(t.expires_at) < new Date() ? "expired" : "active"}</td>
                <td>
                  {t.revoked_at ? null : (
                    <button type="button" class="btn btn-small btn-ghost" onClick={() => revoke(t)}>
                      Revoke
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
