// Experiments: the list, and a new one from a preset (the spec as JSON, the common fields as
// inputs), previewed run by run and launched. A bad axis value comes back as a 422 naming it.

import { useEffect, useState } from "preact/hooks";
import { ApiError, post } from "../api/client";
import { useApi } from "../api/usePoll";
import { dateTime } from "../lib/format";
import { experimentHref, type Experiment, type ExperimentPreset, type ExperimentSpec } from "../lib/experiments";
import { useMe, whyNotLaunch } from "../lib/me";
import { navigate } from "../lib/router";

export function Experiments() {
  const { data, error } = useApi<{ items: Experiment[] }>("/experiments");
  const items = data?.items ?? null;
  return (
    <section class="page">
      <div class="page-head">
        <h1>Experiments</h1>
      </div>
      <NewExperiment />
      <section class="card">
        <div class="section-head">
          <h2>All experiments</h2>
        </div>
        {error ? <p class="error">{error}</p> : null}
        {items === null ? <p class="muted">Loading…</p> : null}
        {items && !items.length ? <p class="empty">No experiment yet.</p> : null}
        {items?.length ? (
          <div class="table-wrap">
            <table class="table" data-testid="experiments-table">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Status</th>
                  <th class="num">Runs</th>
                  <th>Created</th>
                </tr>
              </thead>
              <tbody>
                {items.map((x) => (
                  <tr key={x.id}>
                    <td>
                      <a href={experimentHref(x.id)}>{x.name}</a> <span class="muted small mono">{x.id}</span>
                    </td>
                    <td>{x.status}</td>
                    <td class="num">{x.run_count}</td>
                    <td>{dateTime(x.created_at)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : null}
      </section>
    </section>
  );
}

function NewExperiment() {
  const [presets, setPresets] = useState<ExperimentPreset[]>([]);
  const [text, setText] = useState("");
  const [steps, setSteps] = useState("");
  const [cap, setCap] = useState("");
  const [halving, setHalving] = useState(false);
  const [preview, setPreview] = useState<{ values: Record<string, unknown> }[] | null>(null);
  const [errors, setErrors] = useState<string[]>([]);
  const [busy, setBusy] = useState(false);
  const refused = whyNotLaunch(useMe());

  const load = (p: ExperimentPreset) => {
    setText(JSON.stringify(p.spec, null, 2));
    setSteps(String(p.spec.budget?.steps ?? ""));
    setCap(String(p.spec.forgetting_cap ?? ""));
    setHalving(!!p.spec.early_stopping);
    setPreview(null);
  };
  const { data: found } = useApi<ExperimentPreset[]>("/experiments/presets");
  useEffect(() => {
    if (!found) return;
    setPresets(found);
    if (found.length) load(found[0]);
  }, [found]);

  const spec = (): ExperimentSpec => {
    const s = JSON.parse(text) as ExperimentSpec;
    if (steps.trim()) s.budget = { steps: Number(steps) };
    if (cap.trim()) s.forgetting_cap = Number(cap);
    s.early_stopping = halving ? (s.early_stopping ?? { keep: 0.5 }) : null;
    return s;
  };
  const run = async (launch: boolean) => {
    setBusy(true);
    setErrors([]);
    try {
      const body = spec();
      if (!launch) {
        setPreview((await post<{ runs: { values: Record<string, unknown> }[] }>("/experiments/preview", body)).runs);
      } else {
        const x = await post<Experiment>("/experiments?launch=true", body);
        navigate(experimentHref(x.id));
      }
    } catch (e) {
      if (e instanceof ApiError && e.validation.length) setErrors(e.validation.map((v) => `${v.loc.filter((p) => p !== "body").join(".")}: ${v.msg}`));
      else setErrors([e instanceof SyntaxError ? `The spec is not JSON: ${e.message}` : String(e)]);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form
      class="card"
      data-testid="new-experiment"
      onSubmit={(e) => {
        e.preventDefault();
        run(true);
      }}
    >
      <div class="section-head">
        <h2>New experiment</h2>
        <span class="muted small">a base run config × axes, judged on the target set under a forgetting cap</span>
      </div>
      <div class="form-row">
        <label>
          Preset{" "}
          <select
            data-testid="experiment-preset"
            onChange={(e) => {
              const p = presets.find((x) => x.name === (e.target as HTMLSelectElement).value);
              if (p) load(p);
            }}
          >
            {presets.map((p) => (
              <option key={p.name} value={p.name}>
                {p.label}
              </option>
            ))}
          </select>
        </label>
        <label>
          Steps per run <input type="number" min={1} value={steps} data-testid="experiment-steps" onInput={(e) => setSteps((e.target as HTMLInputElement).value)} />
        </label>
        <label>
          Forgetting cap (bits/char) <input type="number" step="any" min={0} value={cap} data-testid="experiment-cap" onInput={(e) => setCap((e.target as HTMLInputElement).value)} />
        </label>
        <label class="check">
          <input type="checkbox" checked={halving} data-testid="experiment-halving" onChange={(e) => setHalving((e.target as HTMLInputElement).checked)} /> early stopping (keep the best half at each
          evaluation)
        </label>
      </div>
      <label class="block">
        Spec (JSON: name, preset, base, axes or combinations, target, retain)
        <textarea class="mono" rows={14} value={text} data-testid="experiment-spec" onInput={(e) => setText((e.target as HTMLTextAreaElement).value)} />
      </label>
      {errors.length ? (
        <ul class="error" role="alert" data-testid="experiment-errors">
          {errors.map((m) => (
            <li key={m}>{m}</li>
          ))}
        </ul>
      ) : null}
      {preview ? (
        <ol class="small" data-testid="experiment-preview">
          {preview.map((p, i) => (
            <li key={i} class="mono">
              {Object.entries(p.values)
                .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
                .join(", ") || "(base)"}
            </li>
          ))}
        </ol>
      ) : null}
      <div class="actions">
        <button type="button" class="btn" disabled={busy} onClick={() => run(false)}>
          Preview runs
        </button>
        <button type="submit" class="btn btn-primary" disabled={busy || !!refused} title={refused ?? undefined} data-testid="experiment-launch">
          Launch
        </button>
      </div>
    </form>
  );
}
