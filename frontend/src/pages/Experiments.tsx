// Experiments: the list, and a new one from a preset: the axes built field by field (the spec
// as JSON under "Advanced", kept in step), the common fields as inputs, checked live by the
// server's preview (the run count) and launched. A bad axis value comes back as a 422 shown at
// its axis and in the list.

import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, post } from "../api/client";
import { useApi } from "../api/usePoll";
import { dateTime } from "../lib/format";
import { experimentHref, type Experiment, type ExperimentPreset, type ExperimentSpec } from "../lib/experiments";
import { useMe, whyNotLaunch } from "../lib/me";
import { navigate } from "../lib/router";
import { AxisBuilder, fromSpec, runCount, toSpec, type Axes, type FormError } from "./experiment/AxisBuilder";

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

/** The spec as typed, or why it is not JSON. */
function parseSpec(text: string): { spec: ExperimentSpec | null; why: string | null } {
  try {
    const spec = JSON.parse(text) as unknown;
    if (!spec || typeof spec !== "object" || Array.isArray(spec)) return { spec: null, why: "The spec is not a JSON object" };
    return { spec: spec as ExperimentSpec, why: null };
  } catch (e) {
    return { spec: null, why: `The spec is not JSON: ${(e as Error).message}` };
  }
}

function NewExperiment() {
  const [presets, setPresets] = useState<ExperimentPreset[]>([]);
  const [text, setText] = useState("");
  const [axes, setAxes] = useState<Axes>({ mode: "grid", axes: [], off: [] });
  const [steps, setSteps] = useState("");
  const [cap, setCap] = useState("");
  const [halving, setHalving] = useState(false);
  const [preview, setPreview] = useState<{ values: Record<string, unknown> }[] | null>(null);
  const [errors, setErrors] = useState<FormError[]>([]);
  const [busy, setBusy] = useState(false);
  const [checking, setChecking] = useState(false);
  const refused = whyNotLaunch(useMe());
  const previewSeq = useRef(0);

  const load = (p: ExperimentPreset) => {
    setText(JSON.stringify(p.spec, null, 2));
    setAxes(fromSpec(p.spec));
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

  // The JSON typed by hand: the builder follows it whenever it parses.
  const editText = (t: string) => {
    setText(t);
    const { spec: s } = parseSpec(t);
    if (s) setAxes(fromSpec(s));
  };
  // The builder: written into the JSON (the rest of the spec kept as it is).
  const parsed = parseSpec(text);
  const editAxes = (a: Axes) => {
    setAxes(a);
    if (parsed.spec) setText(JSON.stringify(toSpec(parsed.spec, a), null, 2));
  };

  const spec = (): ExperimentSpec => {
    const { spec: s, why } = parseSpec(text);
    if (!s) throw new SyntaxError(why ?? "");
    if (steps.trim()) s.budget = { steps: Number(steps) };
    if (cap.trim()) s.forgetting_cap = Number(cap);
    s.early_stopping = halving ? (s.early_stopping ?? { keep: 0.5 }) : null;
    return s;
  };
  const shown = (e: unknown): FormError[] => {
    if (e instanceof ApiError && e.validation.length) return e.validation.map((v) => ({ loc: v.loc.filter((p) => p !== "body"), msg: v.msg }));
    return [{ loc: [], msg: e instanceof SyntaxError ? e.message : String(e) }];
  };
  const run = async (launch: boolean) => {
    setBusy(true);
    setErrors([]);
    previewSeq.current++; // an explicit preview or launch outranks the live check under way
    try {
      const body = spec();
      if (!launch) {
        setPreview((await post<{ runs: { values: Record<string, unknown> }[] }>("/experiments/preview", body)).runs);
      } else {
        const x = await post<Experiment>("/experiments?launch=true", body);
        navigate(experimentHref(x.id));
      }
    } catch (e) {
      setErrors(shown(e));
    } finally {
      setBusy(false);
      setChecking(false);
    }
  };

  // Live: the server's preview of what is on the form, debounced; only the newest answer shows.
  useEffect(() => {
    if (!text) return;
    const seq = ++previewSeq.current;
    setChecking(true);
    const t = window.setTimeout(async () => {
      try {
        const runs = (await post<{ runs: { values: Record<string, unknown> }[] }>("/experiments/preview", spec())).runs;
        if (seq !== previewSeq.current) return;
        setPreview(runs);
        setErrors([]);
      } catch (e) {
        if (seq !== previewSeq.current) return;
        setPreview(null);
        setErrors(shown(e));
      } finally {
        if (seq === previewSeq.current) setChecking(false);
      }
    }, 400);
    return () => window.clearTimeout(t);
  }, [text, steps, cap, halving]);

  const count = preview && !checking ? preview.length : runCount(axes);

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
      {parsed.spec ? <AxisBuilder value={axes} onChange={editAxes} errors={errors} /> : <p class="muted small">The axes can be built here again once the spec below is JSON.</p>}
      <p data-testid="experiment-count" data-count={count} data-checked={preview && !checking ? "true" : "false"} aria-live="polite">
        <strong>
          {count} run{count === 1 ? "" : "s"}
        </strong>{" "}
        <span class="muted small">{checking ? "checking…" : preview ? "checked by the server" : errors.length ? "the server refused the spec" : ""}</span>
      </p>
      <details class="block" data-testid="experiment-advanced">
        <summary>Advanced: the spec as JSON (name, preset, base, axes or combinations, target, retain)</summary>
        <textarea class="mono" rows={14} value={text} data-testid="experiment-spec" onInput={(e) => editText((e.target as HTMLTextAreaElement).value)} />
      </details>
      {errors.length ? (
        <ul class="error" role="alert" data-testid="experiment-errors">
          {errors.map((e) => {
            const m = e.loc.length ? `${e.loc.join(".")}: ${e.msg}` : e.msg;
            return <li key={m}>{m}</li>;
          })}
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
