// The launch form, generated from GET /api/schema/run-config. The server validates (the live
// preview doubles as validation), and its 422 items are shown at their fields.

import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { ApiError, post } from "../api/client";
import { useApi, useFiles } from "../api/usePoll";
import type { Estimates, FileEntry, Preset, Preview, Run, RunConfig } from "../api/types";
import { useMe, whyNotLaunch } from "../lib/me";
import { bytes, compact, duration, int } from "../lib/format";
import { CopyButton } from "../components/CopyButton";
import { FormField, fieldId } from "../components/FormField";
import { navigate, runHref } from "../lib/router";
import { cleanMsg, errorPath, getIn, sectionsFromSchema, setIn, type SectionSpec } from "../lib/schema";

type Errors = Record<string, string[]>;
const PICKERS = ["model", "adapter", "tokenizer", "dataset"] as const;
/** Fields that only matter for LoRA: hidden (not dropped) while the method is "full". */
const LORA_ONLY = new Set(["trainable", "lora_rank", "lora_alpha", "lora_dropout", "modules_to_save", "peft_path"]);

function toErrors(err: unknown): Errors {
  const out: Errors = {};
  if (err instanceof ApiError && err.status === 422 && err.validation.length) {
    for (const item of err.validation) {
      const path = errorPath(item.loc, item.msg);
      (out[path] ??= []).push(cleanMsg(item.msg));
    }
  } else {
    out[""] = [err instanceof Error ? err.message : String(err)];
  }
  return out;
}

interface Prefill {
  /** An extended tokenizer (from the Tokenizers page). */
  tokenizer?: string | null;
  /** A base model (a merged checkpoint). */
  base?: string | null;
  /** A dataset directory (a cleaned dataset). */
  dataset?: string | null;
}

function withPrefill(config: RunConfig, prefill?: Prefill): RunConfig {
  let c = config;
  if (prefill?.tokenizer) c = setIn({ ...c }, "model.tokenizer_name_or_path", prefill.tokenizer);
  if (prefill?.base) c = setIn({ ...c }, "model.model_name_or_path", prefill.base);
  if (prefill?.dataset) c = setIn({ ...c }, "data.dataset_dir", prefill.dataset);
  return c;
}

export function Launch({ from, prefill }: { from: string | null; prefill?: Prefill }) {
  const [sections, setSections] = useState<SectionSpec[] | null>(null);
  const noLaunch = whyNotLaunch(useMe());
  const [presets, setPresets] = useState<Preset[]>([]);
  const [preset, setPreset] = useState<string>("");
  const [config, setConfig] = useState<RunConfig>({});
  const [name, setName] = useState("");
  const [errors, setErrors] = useState<Errors>({});
  const [preview, setPreview] = useState<Preview | null>(null);
  const [previewOk, setPreviewOk] = useState(false);
  const [submitting, setSubmitting] = useState(false);
  const previewSeq = useRef(0);

  // One-time reads: the schema, the presets, the run edited (if any) and the pickers' paths.
  const schema = useApi<Record<string, unknown>>("/schema/run-config");
  const presetList = useApi<Preset[]>("/presets");
  const source = useApi<Run>(from ? `/runs/${from}` : null);
  const files = useFiles(PICKERS);
  const loadError = schema.error ?? presetList.error ?? source.error;
  // The form (shown once the schema is in) starts from the run edited, else the tiny demo (or
  // the first preset), once per `from`, when all three reads have answered.
  const started = useRef<string | null | undefined>(undefined);
  useEffect(() => {
    const ps = presetList.data;
    if (!schema.data || !ps || (from && !source.data) || started.current === from) return;
    started.current = from;
    setSections(sectionsFromSchema(schema.data));
    setPresets(ps);
    const run = source.data;
    if (from && run) {
      setConfig(run.config);
      setPreset(run.preset ?? "");
      setName(`${run.name || run.id} (edited)`);
    } else {
      const first = ps.find((p) => p.name === "tiny-demo") ?? ps[0];
      if (first) {
        setPreset(first.name);
        setConfig(withPrefill(first.config, prefill));
      }
    }
  }, [schema.data, presetList.data, source.data, from]);

  const body = useMemo(() => ({ name: name || null, preset: preset || null, config }), [name, preset, config]);

  // Live preview + validation, debounced; only the newest answer is shown.
  useEffect(() => {
    if (!sections) return;
    const seq = ++previewSeq.current;
    const t = window.setTimeout(async () => {
      try {
        const p = await post<Preview>("/runs/preview", body);
        if (seq !== previewSeq.current) return;
        setPreview(p);
        setPreviewOk(true);
        setErrors({});
      } catch (err) {
        if (seq !== previewSeq.current) return;
        setPreviewOk(false);
        setErrors(toErrors(err));
      }
    }, 250);
    return () => window.clearTimeout(t);
  }, [body, sections]);

  const choosePreset = (p: Preset) => {
    setPreset(p.name);
    setConfig(p.config);
  };

  const submit = async (e: Event) => {
    e.preventDefault();
    setSubmitting(true);
    try {
      const run = await post<Run>("/runs", body);
      navigate(runHref(run.id));
    } catch (err) {
      const errs = toErrors(err);
      setErrors(errs);
      setPreviewOk(false);
      // Move focus to the first field the server complained about.
      const first = Object.keys(errs).find((k) => k && document.getElementById(fieldId(k)));
      if (first) {
        const el = document.getElementById(fieldId(first));
        el?.closest("details")?.setAttribute("open", "");
        el?.focus();
      }
    } finally {
      setSubmitting(false);
    }
  };

  if (loadError)
    return (
      <p class="error page" role="alert">
        {loadError}
      </p>
    );
  if (!sections) return <p class="page muted">Loading the run-config schema…</p>;

  const method = getIn(config, "method.finetuning_type");
  // Extended tokenizers whose base is not the chosen model are marked in the picker.
  const model = getIn(config, "model.model_name_or_path") as string | null | undefined;
  const pickerFiles = (kind: string): FileEntry[] | undefined => {
    const list = files[kind];
    if (kind !== "tokenizer" || !list || !model) return list;
    return list.map((f) => (f.base && f.base !== model ? { ...f, label: `${f.label} · ⚠ base differs from the model` } : f));
  };
  const placed = new Set(sections.flatMap((s) => s.fields.map((f) => f.path)).concat(["name"]));
  const errorCount = Object.values(errors).reduce((n, e) => n + e.length, 0);

  return (
    <section class="page launch">
      <div class="page-head">
        <h1>Launch a run</h1>
      </div>
      <form class="launch-grid" onSubmit={submit} noValidate>
        <div class="launch-form">
          <fieldset class="card">
            <legend>Preset</legend>
            <div class="presets" role="radiogroup" aria-label="Preset">
              {presets.map((p) => (
                <label key={p.name} class={`preset${preset === p.name ? " preset-on" : ""}`}>
                  <input type="radio" name="preset" value={p.name} checked={preset === p.name} onChange={() => choosePreset(p)} />
                  {p.label}
                </label>
              ))}
            </div>
            <div class={`field${errors.name ? " field-invalid" : ""}`}>
              <label for="f-name">Run name</label>
              <input
                id="f-name"
                value={name}
                placeholder="optional, e.g. kannada-lora-r8"
                onInput={(e) => setName((e.target as HTMLInputElement).value)}
                aria-invalid={errors.name ? "true" : undefined}
                aria-describedby={errors.name ? "f-name-error" : undefined}
              />
              {errors.name ? (
                <div id="f-name-error" class="field-error" role="alert">
                  {errors.name.join(" ")}
                </div>
              ) : null}
            </div>
          </fieldset>
          {sections.map((sec) => {
            const visible = sec.fields.filter((f) => !(sec.key === "method" && method === "full" && LORA_ONLY.has(f.key)));
            const basic = visible.filter((f) => !f.advanced);
            const advanced = visible.filter((f) => f.advanced);
            const advErrors = advanced.some((f) => errors[f.path]);
            const render = (f: (typeof visible)[number]) => (
              <FormField
                key={f.path}
                field={f}
                value={getIn(config, f.path)}
                errors={errors[f.path] ?? []}
                files={f.picker ? pickerFiles(f.picker) : undefined}
                onChange={(v) => setConfig((c) => setIn(c, f.path, v))}
              />
            );
            return (
              <fieldset key={sec.key} class="card section" data-section={sec.key}>
                <legend>{sec.title}</legend>
                {sec.description ? <p class="muted small section-desc">{sec.description}</p> : null}
                {errors[sec.key] ? (
                  <div class="field-error" role="alert">
                    {errors[sec.key].join(" ")}
                  </div>
                ) : null}
                <div class="fields">{basic.map(render)}</div>
                {sec.key === "method" && method === "full" ? <p class="muted small">LoRA settings are hidden for full-weight training.</p> : null}
                {advanced.length ? (
                  // An error inside keeps the section open, so the message is never hidden.
                  <details open={advErrors || undefined}>
                    <summary>
                      Advanced ({advanced.length}){advErrors ? <span class="field-error-inline"> · has errors</span> : null}
                    </summary>
                    <div class="fields">{advanced.map(render)}</div>
                  </details>
                ) : null}
              </fieldset>
            );
          })}
        </div>
        <aside class="launch-side">
          <div class="card sticky">
            <div class="side-head">
              <h2>torchrun command</h2>
              {preview ? <CopyButton text={preview.command} label="Copy command" /> : null}
            </div>
            <pre class={`command${previewOk ? "" : " stale"}`} data-testid="command-preview" aria-live="polite">
              {preview?.command ?? "…"}
            </pre>
            {preview && previewOk && preview.warnings.length ? (
              <ul class="warnings small" data-testid="preview-warnings">
                {preview.warnings.map((w) => (
                  <li key={w}>{w}</li>
                ))}
              </ul>
            ) : null}
            {preview && previewOk ? <EstimatesView est={preview.estimates} config={config} /> : null}
            {errorCount ? (
              <div class="error-summary" role="alert" data-testid="error-summary">
                <strong>
                  {errorCount} problem{errorCount === 1 ? "" : "s"} to fix
                </strong>
                <ul>
                  {Object.entries(errors).map(([path, msgs]) =>
                    msgs.map((m, i) => (
                      <li key={path + i}>
                        {path && placed.has(path) ? (
                          // biome-ignore lint/a11y/useValidAnchor: a link to the field, focused by hand (the hash is the route)
                          <a
                            href={`#/launch`}
                            onClick={(e) => {
                              e.preventDefault();
                              const el = document.getElementById(fieldId(path)) ?? document.getElementById(`f-${path}`);
                              el?.closest("details")?.setAttribute("open", "");
                              el?.focus();
                            }}
                          >
                            {path}
                          </a>
                        ) : (
                          <code>{path || "config"}</code>
                        )}
                        : {m}
                      </li>
                    )),
                  )}
                </ul>
              </div>
            ) : (
              <p class="ok small">Config is valid.</p>
            )}
            <button type="submit" class="btn btn-primary btn-wide" disabled={submitting || !!noLaunch} title={noLaunch ?? undefined}>
              {submitting ? "Queuing…" : "Launch run"}
            </button>
            {noLaunch ? <p class="muted small">{noLaunch}</p> : null}
          </div>
        </aside>
      </form>
    </section>
  );
}

/** What the server measured about this config: new embedding rows, and the data's size from a scan. */
function EstimatesView({ est, config }: { est: Estimates; config: RunConfig }) {
  const v = est.vocab;
  const d = est.data;
  const dataset = (config.data?.dataset_dir as string | undefined) ?? (config.data?.train_file as string | undefined);
  const tokenizer = (config.model?.tokenizer_name_or_path ?? config.model?.model_name_or_path) as string | undefined;
  const scanHref = `#/datasets?${new URLSearchParams({
    paths: dataset ?? "",
    ...(tokenizer ? { tokenizer } : {}),
    ...(config.data?.block_size ? { block_size: String(config.data.block_size) } : {}),
  })}`;
  return (
    <div class="estimates small" data-testid="estimates">
      <ModelTable est={est} config={config} />
      {v.new_rows || v.reused_rows ? (
        <p data-testid="vocab-estimate">
          The tokenizer has {int(v.tokenizer_vocab)} tokens, the model {int(v.model_vocab)} rows: {v.reused_rows ? <strong>{int(v.reused_rows)} padded rows will be reused</strong> : null}
          {v.reused_rows && v.new_rows ? ", " : null}
          {v.new_rows ? <strong>{int(v.new_rows)} embedding rows will be added</strong> : null}, initialised by {v.init ?? "the training script's default"}.
        </p>
      ) : v.tokenizer_vocab != null && v.model_vocab != null ? (
        <p data-testid="vocab-estimate">Tokenizer and model share {int(v.model_vocab)} tokens: no rows added.</p>
      ) : null}
      {d.blocks != null ? (
        <p data-testid="data-estimate">
          Data (scan {d.scan_job}): {int(d.tokens)} tokens in {int(d.blocks)} blocks; {int(d.steps_per_epoch)} steps per epoch, {int(d.total_steps)} steps, {compact(d.total_tokens)} tokens in all
          {d.seconds != null ? `, about ${duration(d.seconds)} at the ${compact(d.tokens_per_second)} tokens/s measured last time` : ""}.
        </p>
      ) : dataset ? (
        <p data-testid="data-estimate" class="muted">
          No token count yet: <a href={scanHref}>scan this dataset</a> with this tokenizer and block size.
        </p>
      ) : null}
    </div>
  );
}

/** Parameters, tokens per step, memory per device by component and (when measured) time. */
/** The checkpoints kept at once do not fit the free space of the runs volume. */
function diskShort(est: Estimates): boolean {
  const k = est.disk;
  return !!k && k.total_bytes != null && k.free_bytes != null && k.total_bytes > k.free_bytes;
}

/** One checkpoint (weights + optimizer state) × how many are kept, against the free space. */
function diskText(est: Estimates): string {
  const k = est.disk;
  if (!k || k.checkpoint_bytes == null) return "–";
  const kept = k.kept != null ? `${k.kept} kept × ${bytes(k.checkpoint_bytes)} = ${bytes(k.total_bytes)}` : `${bytes(k.checkpoint_bytes)} each (every save kept)`;
  const free = k.free_bytes != null ? `; ${bytes(k.free_bytes)} free on ${k.path}` : "";
  return `${kept} (weights + optimizer state)${free}${diskShort(est) ? ": does not fit — lower save_total_limit or free space" : ""}`;
}

type EvalEst = NonNullable<Estimates["evaluation"]>;

/** Where a part of the evaluation estimate comes from (backend/services/eval_time.py). */
function basisText(basis: string | null, e: EvalEst): string {
  if (basis === "measured_eval") return `measured by run ${e.measured_run}`;
  if (basis === "measured_training") return "from this queue's measured training speed";
  return "from the model's size (nothing measured on this queue yet)";
}

/** Seconds, tenths below one (an evaluation's parts are often that short). */
const secs = (x: number) => (x < 1 ? `${x.toFixed(1)}s` : duration(x));

/** Per evaluation, scoring and sampling apart, and in all; or why not. */
function evalText(est: Estimates): string {
  const e = est.evaluation;
  if (!e) return "–";
  const n = e.evaluations != null ? `${e.evaluations} evaluation${e.evaluations === 1 ? "" : "s"}` : "evaluations";
  const scoring =
    e.scoring_seconds != null
      ? `scoring ${int(e.characters)} characters about ${secs(e.scoring_seconds)} (${basisText(e.scoring_basis, e)})`
      : "scoring: not known until the sets are read (a budget in documents or packed blocks)";
  const sampling = e.samples
    ? e.sampling_seconds != null
      ? `sampling ${e.samples} generations of up to ${Math.round(e.sample_tokens / e.samples)} tokens about ${secs(e.sampling_seconds)} (${basisText(e.sampling_basis, e)})`
      : "sampling: not known"
    : "no samples";
  const each = e.seconds_each != null ? `about ${secs(e.seconds_each)} each × ${n}` + (e.evaluations != null ? ` = ${duration(e.seconds_each * e.evaluations)}` : "") : n;
  return `${each}: ${scoring}; ${sampling}`;
}

/** Sampling would take longer than scoring the held-out text. */
const slowSamples = (est: Estimates) => !!est.evaluation?.sampling_exceeds_scoring;

function ModelTable({ est, config }: { est: Estimates; config: RunConfig }) {
  const m = est.model;
  const p = m.params;
  const mem = m.memory;
  const d = est.data;
  const checkpointing = config.training?.gradient_checkpointing !== false;
  if (!p || !mem)
    return m.note ? (
      <p class="muted" data-testid="model-estimate">
        Parameters: {m.note}.
      </p>
    ) : null;
  const method = config.method?.finetuning_type === "full" ? "full" : "LoRA";
  const share = mem.world_size > 1 && mem.zero_stage > 0 ? ` ÷ ${mem.world_size} ranks` : "";
  const rows: [string, string, string, number][] = [
    ["weights", `${mem.weight_dtype}${mem.zero_stage >= 3 ? share : ""}`, "est-weights", mem.weights],
    ["gradients", `trainable only${mem.zero_stage >= 2 ? share : ""}`, "est-gradients", mem.gradients],
    ["optimizer states", `AdamW${mem.zero_stage >= 1 ? share : ""}`, "est-optimizer", mem.optimizer],
    [
      "activations",
      `${checkpointing ? "with" : "without"} gradient checkpointing (${checkpointing ? "without" : "with"}: ${bytes(
        checkpointing ? mem.activations_without_checkpointing : mem.activations_with_checkpointing,
      )})`,
      "est-activations",
      mem.activations,
    ],
  ];
  return (
    <table class="est-table" data-testid="model-estimate" data-total-params={p.total} data-trainable-params={p.trainable}>
      <tbody>
        <tr>
          <th>Parameters</th>
          <td data-testid="est-params">
            {compact(p.total)} total, {compact(p.trainable)} trainable ({method}
            {method === "LoRA" ? `: ${compact(p.lora)} adapter + ${compact(p.modules_to_save)} in modules_to_save` : ""})
            {p.unknown_modules.length ? <span class="muted"> · not counted (unknown module): {p.unknown_modules.join(", ")}</span> : null}
          </td>
        </tr>
        <tr>
          <th>Tokens per step</th>
          <td data-testid="est-tokens-per-step">
            {int(m.tokens_per_step)} ({int(m.block_size)} per block){d.total_steps != null ? `; ${int(d.total_steps)} steps` : ""}
          </td>
        </tr>
        <tr>
          <th colSpan={2}>Memory per device{mem.zero_stage ? ` (ZeRO-${mem.zero_stage}, ${mem.world_size} ranks)` : ""}</th>
        </tr>
        {rows.map(([name, how, id, value]) => (
          <tr key={id}>
            <td>
              {name} <span class="muted">{how}</span>
            </td>
            <td data-testid={id} data-bytes={value}>
              {bytes(value)}
            </td>
          </tr>
        ))}
        <tr>
          <th>Total per device</th>
          <td data-testid="est-memory-total" data-bytes={mem.total}>
            <strong>{bytes(mem.total)}</strong>
            {mem.offloaded ? ` (+ ${bytes(mem.offloaded)} offloaded to the host)` : ""}
          </td>
        </tr>
        <tr>
          <th>Time</th>
          <td data-testid="est-time">
            {d.seconds != null ? `about ${duration(d.seconds)} at the ${compact(d.tokens_per_second)} tokens/s measured last time` : "not known yet: no finished run of this model on this queue"}
          </td>
        </tr>
        <tr>
          <th>Evaluation</th>
          <td data-testid="est-eval" data-slow-samples={slowSamples(est) ? "true" : "false"}>
            {evalText(est)}
            {slowSamples(est) ? (
              <span class="field-error" data-testid="est-eval-slow-samples">
                {" "}
                — sampling takes longer than the scoring itself: lower Sample length or give fewer Sample prompts
              </span>
            ) : null}
          </td>
        </tr>
        <tr>
          <th>Checkpoints</th>
          <td data-testid="est-disk" data-bytes={est.disk?.total_bytes ?? undefined} class={diskShort(est) ? "field-error" : undefined}>
            {diskText(est)}
          </td>
        </tr>
      </tbody>
    </table>
  );
}
