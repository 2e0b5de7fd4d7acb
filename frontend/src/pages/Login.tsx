import { useState } from "preact/hooks";
import { ApiError, api, setToken } from "../api/client";
import { forgetMe } from "../lib/me";
import { navigate } from "../lib/router";

/** sessionStorage key of the route to return to after signing in. */
export const AFTER_LOGIN = "cpt-panel-after-login";

function afterLogin(): void {
  forgetMe();
  const next = sessionStorage.getItem(AFTER_LOGIN);
  sessionStorage.removeItem(AFTER_LOGIN);
  navigate(next && next.length > 2 ? next : "/runs");
}

/** Name and password: the server sets the session cookie (HttpOnly) and the CSRF cookie. */
function PasswordForm() {
  const [name, setName] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await api("/session", { method: "POST", json: { name: name.trim(), password } }, null);
      setToken(null);
      afterLogin();
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="card login-card" onSubmit={submit} aria-label="With name and password">
      <h1>cpt-panel</h1>
      <p class="muted">Continual pretraining control panel.</p>
      <label for="user-name">Name</label>
      <input id="user-name" autoComplete="username" value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} required autoFocus />
      <label for="user-password">Password</label>
      <input
        id="user-password"
        type="password"
        autoComplete="current-password"
        value={password}
        onInput={(e) => setPassword((e.target as HTMLInputElement).value)}
        aria-invalid={error ? "true" : undefined}
        aria-describedby={error ? "password-error" : undefined}
        required
      />
      {error ? (
        <p id="password-error" class="field-error" role="alert">
          {error}
        </p>
      ) : null}
      <button type="submit" class="btn btn-primary" disabled={busy || !name.trim() || !password}>
        {busy ? "Checking…" : "Log in"}
      </button>
    </form>
  );
}

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
      afterLogin();
    } catch (err) {
      setError(err instanceof ApiError && err.status === 401 ? "That token was not accepted." : String(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="login">
      {reason ? <p class="notice">{reason}</p> : null}
      <PasswordForm />
      <form class="card login-card" onSubmit={submit} aria-label="With a token">
        <p class="muted">Or with an API token (the panel's CPT_API_TOKEN, or a personal one).</p>
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
