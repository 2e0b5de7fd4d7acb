import { useState } from "preact/hooks";
import { ApiError, api, setToken } from "../api/client";
import { navigate } from "../lib/router";

/** sessionStorage key of the route to return to after signing in. */
export const AFTER_LOGIN = "cpt-panel-after-login";

/** The token is checked against a real authenticated route before it is kept. */
export function Login({ reason }: { reason: string | null }) {
  const [token, setValue] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await api("/runs?limit=1", {}, token.trim());
      setToken(token.trim());
      const next = sessionStorage.getItem(AFTER_LOGIN);
      sessionStorage.removeItem(AFTER_LOGIN);
      navigate(next && next.length > 2 ? next : "/runs");
    } catch (err) {
      setError(err instanceof ApiError && err.status === 401 ? "That token was not accepted." : String(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="login">
      <form class="card login-card" onSubmit={submit}>
        <h1>cpt-panel</h1>
        <p class="muted">Continual pretraining control panel. Sign in with the API token (CPT_API_TOKEN).</p>
        {reason ? <p class="notice">{reason}</p> : null}
        <label for="token">API token</label>
        <input
          id="token"
          type="password"
          autoComplete="current-password"
          value={token}
          onInput={(e) => setValue((e.target as HTMLInputElement).value)}
          aria-invalid={error ? "true" : undefined}
          aria-describedby={error ? "token-error" : undefined}
          required
          autoFocus
        />
        {error ? (
          <p id="token-error" class="field-error" role="alert">
            {error}
          </p>
        ) : null}
        <button type="submit" class="btn btn-primary" disabled={busy || !token.trim()}>
          {busy ? "Checking…" : "Sign in"}
        </button>
      </form>
    </main>
  );
}
