// The trackers' settings (admins): what a run that reports to MLflow, W&B, TensorBoard or Trackio
// gets in its ranks' environment. Keys are write-only: the server says which settings are set
// and shows only the plain ones (project, entity, mode...).

import { useState } from "preact/hooks";
import { ApiError, api } from "../api/client";
import type { TrackerState } from "../api/types";
import { useApi } from "../api/usePoll";

const SECRET = new Set(["api_key", "token", "password", "hf_token", "tracking_uri", "base_url"]);

function TrackerForm({ state, onSaved }: { state: TrackerState; onSaved: (s: TrackerState[]) => void }) {
  const [values, setValues] = useState<Record<string, string>>({});
  const [error, setError] = useState<string | null>(null);
  const names = Object.keys(state.set);
  if (names.length === 0) return null;
  const save = async (e: Event) => {
    e.preventDefault();
    setError(null);
    try {
      onSaved(await api<TrackerState[]>(`/settings/trackers/${state.tracker}`, { method: "PUT", json: { values } }));
      setValues({});
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    }
  };
  return (
    <form onSubmit={save} aria-label={`${state.tracker} settings`} data-testid={`tracker-${state.tracker}`}>
      <h3>{state.tracker}</h3>
      {names.map((name) => (
        <label class="field" key={name} htmlFor={`${state.tracker}-${name}`}>
          <span>
            {name} {state.set[name] ? <em class="muted">({state.plain[name] ?? "set"})</em> : <em class="muted">(not set)</em>}
          </span>
          {SECRET.has(name) ? (
            <input
              id={`${state.tracker}-${name}`}
              type="password"
              autocomplete="off"
              value={values[name] ?? ""}
              onInput={(e) => setValues({ ...values, [name]: (e.target as HTMLInputElement).value })}
            />
          ) : (
            <input id={`${state.tracker}-${name}`} type="text" autocomplete="off" value={values[name] ?? ""} onInput={(e) => setValues({ ...values, [name]: (e.target as HTMLInputElement).value })} />
          )}
        </label>
      ))}
      {error ? (
        <p class="field-error" role="alert">
          {error}
        </p>
      ) : null}
      <button type="submit" class="btn" disabled={Object.keys(values).length === 0}>
        Save {state.tracker}
      </button>
    </form>
  );
}

export function TrackerSettings() {
  const states = useApi<TrackerState[]>("/settings/trackers");
  return (
    <section class="card" aria-labelledby="trackers-h">
      <h2 id="trackers-h">Experiment trackers</h2>
      <p class="muted">A run that also reports to a tracker (the form's “Also report to”) gets these in its environment only; keys are stored encrypted and never shown again.</p>
      {(states.data ?? []).map((s) => (
        <TrackerForm key={s.tracker} state={s} onSaved={states.set} />
      ))}
      {states.data?.find((s) => s.tracker === "tensorboard") ? <p class="muted">TensorBoard needs no settings: its event files go to the run's output directory.</p> : null}
    </section>
  );
}
