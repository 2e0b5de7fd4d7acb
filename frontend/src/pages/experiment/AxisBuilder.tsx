// The axes of a new experiment, field by field: a run-config field (from the same schema the
// launch form is made of) and its values typed by the field's kind; a full grid of every
// combination, or only the combinations ticked. The JSON spec stays the one the server gets:
// the builder reads it (`fromSpec`) and writes it (`toSpec`).

import { useEffect, useState } from "preact/hooks";
import type { FileEntry } from "../../api/types";
import { useApi } from "../../api/usePoll";
import { Picker } from "../../components/FormField";
import type { ExperimentSpec } from "../../lib/experiments";
import { sectionsFromSchema, type FieldSpec, type SectionSpec } from "../../lib/schema";

export interface Axis {
  /** "training.learning_rate"; "" until a field is picked (left out of the spec). */
  path: string;
  values: unknown[];
}

export interface Axes {
  mode: "grid" | "listed";
  axes: Axis[];
  /** Listed: the combinations of the grid left out (by `comboKey`). */
  off: string[];
}

/** A 422 item as the form shows it: its loc without "body", and the message. */
export interface FormError {
  loc: (string | number)[];
  msg: string;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
export const comboKey = (c: Record<string, unknown>) => JSON.stringify(c);

/** Every combination of the axes' values, the first axis varying slowest (as the server does). */
export function gridOf(axes: Axis[]): Record<string, unknown>[] {
  let out: Record<string, unknown>[] = [{}];
  for (const a of axes.filter((x) => x.path)) out = out.flatMap((c) => a.values.map((v) => ({ ...c, [a.path]: v })));
  return out;
}

/** The builder's state read from a spec (a preset, or the JSON as typed). */
export function fromSpec(s: ExperimentSpec): Axes {
  const combos = s.combinations;
  if (Array.isArray(combos)) {
    const names = combos.length ? Object.keys(combos[0]) : [];
    const axes = names.map((path) => {
      const values: unknown[] = [];
      for (const c of combos) if (!values.some((v) => same(v, c[path]))) values.push(c[path]);
      return { path, values };
    });
    const chosen = new Set(combos.map((c) => comboKey(Object.fromEntries(names.map((n) => [n, c[n]])))));
    return {
      mode: "listed",
      axes,
      off: gridOf(axes)
        .map(comboKey)
        .filter((k) => !chosen.has(k)),
    };
  }
  const axes = Object.entries(s.axes ?? {}).map(([path, values]) => ({ path, values: Array.isArray(values) ? values : [values] }));
  return { mode: "grid", axes, off: [] };
}

/** The spec with the builder's axes in it: `axes` for a grid, `combinations` when listed. */
export function toSpec(s: ExperimentSpec, a: Axes): ExperimentSpec {
  const { axes: _a, combinations: _c, ...rest } = s;
  const picked = a.axes.filter((x) => x.path);
  if (a.mode === "grid") return { ...rest, axes: Object.fromEntries(picked.map((x) => [x.path, x.values])) };
  const off = new Set(a.off);
  return { ...rest, combinations: gridOf(picked).filter((c) => !off.has(comboKey(c))) };
}

/** How many runs the builder describes (the server's preview is the word that counts). */
export function runCount(a: Axes): number {
  const all = gridOf(a.axes);
  if (a.mode === "grid") return all.length;
  const off = new Set(a.off);
  return all.filter((c) => !off.has(comboKey(c))).length;
}

const show = (v: unknown) => (typeof v === "string" ? v : JSON.stringify(v));

/** A number list as typed: "1e-4, 2e-4" → [0.0001, 0.0002]; what is not a number is sent as
 *  it is, so the server's 422 names it. */
function parseNumbers(raw: string): unknown[] {
  return raw
    .split(/[,\s]+/)
    .filter(Boolean)
    .map((t) => (Number.isFinite(Number(t)) ? Number(t) : t));
}

/** Strings (paths, names), one per line; for JSON-shaped fields each line as JSON when it parses. */
function parseLines(raw: string, json: boolean): unknown[] {
  return raw
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => {
      if (!json) return l;
      try {
        return JSON.parse(l);
      } catch {
        return l;
      }
    });
}

const axisId = (path: string) => `axis-${path.replace(/\./g, "-")}`;

export function AxisBuilder({ value, onChange, errors }: { value: Axes; onChange: (a: Axes) => void; errors: FormError[] }) {
  const { data: schema, error } = useApi<Record<string, unknown>>("/schema/run-config");
  const sections: SectionSpec[] | null = schema ? sectionsFromSchema(schema) : null;
  const fields = new Map((sections ?? []).flatMap((s) => s.fields.map((f) => [f.path, f] as const)));
  const used = new Set(value.axes.map((a) => a.path));
  const set = (i: number, a: Axis | null) => {
    const axes = a ? value.axes.map((x, j) => (j === i ? a : x)) : value.axes.filter((_, j) => j !== i);
    onChange({ ...value, axes });
  };
  const combos = gridOf(value.axes);
  const off = new Set(value.off);
  const comboErrors = errors.filter((e) => e.loc[0] === "combinations");

  return (
    <fieldset class="axis-builder" data-testid="axis-builder">
      <legend>Axes</legend>
      {error ? <p class="error">{error}</p> : null}
      {value.axes.map((a, i) => (
        <AxisRow
          key={i}
          axis={a}
          sections={sections}
          field={fields.get(a.path)}
          used={used}
          errors={a.path ? errors.filter((e) => e.loc[0] === "axes" && e.loc[1] === a.path) : []}
          onChange={(x) => set(i, x)}
        />
      ))}
      <div class="actions">
        <button type="button" class="btn" data-testid="axis-add" onClick={() => onChange({ ...value, axes: [...value.axes, { path: "", values: [] }] })}>
          Add an axis
        </button>
        <span role="radiogroup" aria-label="Runs">
          <label class="inline">
            <input type="radio" name="axis-mode" checked={value.mode === "grid"} data-testid="axis-mode-grid" onChange={() => onChange({ ...value, mode: "grid", off: [] })} /> every combination
          </label>{" "}
          <label class="inline">
            <input type="radio" name="axis-mode" checked={value.mode === "listed"} data-testid="axis-mode-listed" onChange={() => onChange({ ...value, mode: "listed" })} /> only the combinations
            ticked
          </label>
        </span>
      </div>
      {value.mode === "listed" ? (
        <ul class="combinations small" data-testid="axis-combinations">
          {combos.map((c) => {
            const k = comboKey(c);
            return (
              <li key={k}>
                <label class="inline mono">
                  <input type="checkbox" checked={!off.has(k)} onChange={() => onChange({ ...value, off: off.has(k) ? value.off.filter((x) => x !== k) : [...value.off, k] })} />{" "}
                  {Object.entries(c)
                    .map(([p, v]) => `${p}=${show(v)}`)
                    .join(", ") || "(base)"}
                </label>
              </li>
            );
          })}
        </ul>
      ) : null}
      {comboErrors.length ? (
        <div class="field-error" role="alert" data-testid="axis-error-combinations">
          {comboErrors.map((e) => e.msg).join(" ")}
        </div>
      ) : null}
    </fieldset>
  );
}

function AxisRow({
  axis,
  sections,
  field,
  used,
  errors,
  onChange,
}: {
  axis: Axis;
  sections: SectionSpec[] | null;
  field: FieldSpec | undefined;
  used: Set<string>;
  errors: FormError[];
  onChange: (a: Axis | null) => void;
}) {
  const id = axisId(axis.path || "new");
  return (
    <div class={`field axis${errors.length ? " field-invalid" : ""}`} data-testid="axis" data-axis={axis.path}>
      <div class="form-row">
        <label>
          Field{" "}
          <select data-testid="axis-field" value={axis.path} onChange={(e) => onChange({ path: (e.target as HTMLSelectElement).value, values: [] })}>
            <option value="">pick a run-config field…</option>
            {/* A path typed in the JSON that the schema lacks stays selectable (the server names it). */}
            {axis.path && sections && !field ? <option value={axis.path}>{axis.path}</option> : null}
            {(sections ?? []).map((s) => (
              <optgroup key={s.key} label={s.title}>
                {s.fields.map((f) => (
                  <option key={f.path} value={f.path} disabled={f.path !== axis.path && used.has(f.path)}>
                    {f.path}
                  </option>
                ))}
              </optgroup>
            ))}
          </select>
        </label>
        <span class="muted small" data-testid="axis-size">
          {axis.values.length} value{axis.values.length === 1 ? "" : "s"}
        </span>
        <button type="button" class="btn btn-small" data-testid="axis-remove" onClick={() => onChange(null)}>
          Remove
        </button>
      </div>
      {axis.path ? <Values id={id} axis={axis} field={field} onChange={(values) => onChange({ ...axis, values })} /> : null}
      {errors.length ? (
        <div class="field-error" role="alert" data-testid={`axis-error-${axis.path}`}>
          {errors.map((e) => (typeof e.loc[2] === "number" ? `value ${e.loc[2] + 1}: ${e.msg}` : e.msg)).join(" ")}
        </div>
      ) : null}
    </div>
  );
}

/** The values' input, by the field's kind: choices as checkboxes, numbers as a list, the rest
 *  one per line (with the launch form's picker for paths). */
function Values({ id, axis, field, onChange }: { id: string; axis: Axis; field: FieldSpec | undefined; onChange: (v: unknown[]) => void }) {
  const kind = field?.kind ?? "json";
  const choices = kind === "enum" ? (field?.options ?? []) : kind === "boolean" ? ["true", "false"] : null;
  const numeric = kind === "integer" || kind === "number";
  const text = (vs: unknown[]) => vs.map(show).join(numeric ? ", " : "\n");
  // Typed text is kept while it parses to the same values ("1e-" is not a number yet).
  const [raw, setRaw] = useState(text(axis.values));
  const parse = (t: string) => (numeric ? parseNumbers(t) : parseLines(t, kind === "json" || kind === "array"));
  useEffect(() => {
    if (!same(parse(raw), axis.values)) setRaw(text(axis.values));
  }, [axis.values]);
  const files = useApi<FileEntry[]>(field?.picker ? `/files?kind=${field.picker}` : null).data;

  if (choices) {
    const value = (o: string) => (kind === "boolean" ? o === "true" : o);
    return (
      <span class="choices" id={id} data-testid="axis-values">
        {choices.map((o) => {
          const on = axis.values.some((v) => same(v, value(o)));
          return (
            <label key={o} class="inline">
              <input type="checkbox" value={o} checked={on} onChange={() => onChange(on ? axis.values.filter((v) => !same(v, value(o))) : [...axis.values, value(o)])} /> {o}
            </label>
          );
        })}
      </span>
    );
  }
  const input = (t: string) => {
    setRaw(t);
    onChange(parse(t));
  };
  return (
    <div class="field-control">
      {numeric ? (
        <input
          id={id}
          type="text"
          inputMode="decimal"
          autoComplete="off"
          data-testid="axis-values"
          value={raw}
          placeholder="numbers, e.g. 1e-4, 2e-4"
          onInput={(e) => input((e.target as HTMLInputElement).value)}
        />
      ) : (
        <textarea
          id={id}
          rows={Math.max(2, axis.values.length + 1)}
          spellcheck={false}
          data-testid="axis-values"
          value={raw}
          placeholder={kind === "json" || kind === "array" ? "one value per line (JSON)" : "one value per line"}
          onInput={(e) => input((e.target as HTMLTextAreaElement).value)}
        />
      )}
      {field?.picker ? <Picker field={field} files={files ?? []} value={null} onChange={(v) => onChange([...axis.values, v])} /> : null}
    </div>
  );
}
