// The panel's settings (admins): the Hub token, set once for every download, and the trackers'. Write-only: the
// server answers whether one is set, from where and what its last check said, never the token.

import { useState } from "preact/hooks";
import { ApiError, api, post } from "../api/client";
import type { HubCheck, HubTokenState } from "../api/types";
import { useApi } from "../api/usePoll";
import { TrackerSettings } from "../components/TrackerSettings";
import { dateTime } from "../lib/format";

const SOURCE: Record<string, string> = {
  panel: "set here (stored encrypted)",
  env: "CPT_HUB_TOKEN of the API's environment",
};

function CheckLine({ check }: { check: HubCheck }) {
  return (
    <p class={check.result === "valid" ? "ok" : check.result === "unchecked" ? "muted" : "field-error"} data-testid="hub-check">
      Checked {dateTime(check.at)}: {check.message}
    </p>
  );
}

export function Settings() {
  const state = useApi<HubTokenState>("/settings/hub");
  const [token, setToken] = useState("");
  const [repo, setRepo] = useState("");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);
  const [shown, setShown] = useState<HubTokenState | null>(null);
  const hub = shown ?? state.data;

  const act = async (fn: () => Promise<HubTokenState>) => {
    setErrors({});
    setBusy(true);
    try {
      setShown(await fn());
      setToken("");
      state.reload();
    } catch (err) {
      if (err instanceof ApiError && err.validation.length) {
        const out: Record<string, string> = {};
        for (const v of err.validation) out[String(v.loc[v.loc.length - 1] ?? "body")] = v.msg;
        setErrors(out);
      } else setErrors({ body: err instanceof Error ? err.message : String(err) });
    } finally {
      setBusy(false);
    }
  };
  const body = () => (repo.trim() ? { repo: repo.trim() } : {});
  const save = (e: Event) => {
    e.preventDefault();
    void act(() => api<HubTokenState>("/settings/hub/token", { method: "PUT", json: { token: token.trim(), ...body() } }));
  };

  return (
    <section class="page" data-testid="settings-page">
      <div class="page-head">
        <h1>Settings</h1>
      </div>
      <form class="card" onSubmit={save} aria-label="Hub token">
        <h2>Hub token</h2>
        <p class="muted">Used by every download (gated and private repos), checked against {hub?.endpoint ?? "the Hub"} when saved, stored encrypted, and never shown again.</p>
        {hub === null ? (
          <p class="muted">Loading…</p>
        ) : (
          <div data-testid="hub-state">
            <p>
              {hub.set ? (
                <>
                  <strong>Set</strong>: {SOURCE[hub.source ?? ""] ?? hub.source}
                  {hub.updated_at ? `, ${dateTime(hub.updated_at)}` : ""}
                </>
              ) : (
                <strong>Not set</strong>
              )}
            </p>
            {!hub.readable ? <p class="field-error">The stored token was encrypted under another key (CPT_SECRET_KEY changed): set it again.</p> : null}
            {hub.check ? <CheckLine check={hub.check} /> : null}
          </div>
        )}
        <label class="field">
          <span>New token</span>
          <input
            type="password"
            autocomplete="off"
            value={token}
            placeholder="hf_…"
            maxLength={512}
            aria-invalid={errors.token ? "true" : undefined}
            onInput={(e) => setToken((e.target as HTMLInputElement).value)}
          />
          {errors.token ? (
            <span class="field-error" role="alert">
              {errors.token}
            </span>
          ) : null}
        </label>
        <label class="field">
          <span>Check access to a repo (optional)</span>
          <input value={repo} placeholder="meta-llama/Llama-3.2-1B" maxLength={200} aria-invalid={errors.repo ? "true" : undefined} onInput={(e) => setRepo((e.target as HTMLInputElement).value)} />
          {errors.repo ? (
            <span class="field-error" role="alert">
              {errors.repo}
            </span>
          ) : null}
        </label>
        {errors.body ? (
          <p class="field-error" role="alert">
            {errors.body}
          </p>
        ) : null}
        {state.error ? <p class="field-error">{state.error}</p> : null}
        <div class="row">
          <button type="submit" class="btn btn-primary" disabled={busy || !token.trim()}>
            Check and save
          </button>
          <button type="button" class="btn" disabled={busy || !hub?.set} onClick={() => void act(() => post<HubTokenState>("/settings/hub/check", body()))}>
            Check again
          </button>
          <button type="button" class="btn" disabled={busy || hub?.source !== "panel"} onClick={() => void act(() => api<HubTokenState>("/settings/hub/token", { method: "DELETE" }))}>
            Remove
          </button>
        </div>
      </form>
      <TrackerSettings />
    </section>
  );
}
