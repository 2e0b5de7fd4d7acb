// One generated input for one schema field. Numbers are typed as text and parsed leniently:
// whatever the user typed is sent, so the server's 422 (not a second client-side rule set)
// is what explains a bad value.

import type { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";
import type { FileEntry } from "../api/types";
import { rangeHint, type FieldSpec } from "../lib/schema";

interface Props {
  field: FieldSpec;
  value: unknown;
  errors: string[];
  files?: FileEntry[];
  onChange: (value: unknown) => void;
}

export const fieldId = (path: string) => `f-${path.replace(/\./g, "-")}`;

function parseNumber(raw: string, field: FieldSpec): unknown {
  const t = raw.trim();
  if (t === "") return field.nullable ? null : "";
  const n = Number(t);
  return Number.isFinite(n) ? n : t;
}

function parseJson(raw: string): unknown {
  if (raw.trim() === "") return null;
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

function jsonText(value: unknown): string {
  if (value === null || value === undefined) return "";
  return typeof value === "string" ? value : JSON.stringify(value, null, 1);
}

function display(value: unknown): string {
  if (value === null || value === undefined) return "";
  return String(value);
}

export function FormField({ field, value, errors, files, onChange }: Props) {
  const id = fieldId(field.path);
  const errId = `${id}-error`;
  const helpId = `${id}-help`;
  const invalid = errors.length > 0;
  const hint = rangeHint(field);
  const describedBy = [invalid ? errId : "", field.description || hint ? helpId : ""].filter(Boolean).join(" ") || undefined;
  const common = {
    id,
    name: field.path,
    "aria-invalid": invalid ? ("true" as const) : undefined,
    "aria-describedby": describedBy,
  };

  // Numbers keep the user's text while typing ("1e-" is not a number yet); so does JSON.
  const [raw, setRaw] = useState(field.kind === "json" ? jsonText(value) : display(value));
  useEffect(() => {
    if (field.kind === "json") {
      if (JSON.stringify(parseJson(raw)) !== JSON.stringify(value ?? null)) setRaw(jsonText(value));
    } else if (parseNumber(raw, field) !== value) setRaw(display(value));
  }, [value]);

  let input: ComponentChildren;
  if (field.kind === "boolean") {
    input = <input {...common} type="checkbox" checked={value === true} onChange={(e) => onChange((e.target as HTMLInputElement).checked)} />;
  } else if (field.kind === "enum") {
    input = (
      <select
        {...common}
        value={value === null || value === undefined ? "" : String(value)}
        onChange={(e) => {
          const v = (e.target as HTMLSelectElement).value;
          onChange(v === "" ? null : v);
        }}
      >
        {field.nullable ? <option value="">(default)</option> : null}
        {field.options?.map((o) => (
          <option key={o} value={o}>
            {o}
          </option>
        ))}
      </select>
    );
  } else if (field.kind === "integer" || field.kind === "number") {
    input = (
      <input
        {...common}
        type="text"
        inputMode={field.kind === "integer" ? "numeric" : "decimal"}
        autoComplete="off"
        value={raw}
        placeholder={field.nullable ? "(empty)" : undefined}
        onInput={(e) => {
          const v = (e.target as HTMLInputElement).value;
          setRaw(v);
          onChange(parseNumber(v, field));
        }}
      />
    );
  } else if (field.kind === "json") {
    // A mapping or a list of objects as JSON; text that does not parse yet is sent as it is,
    // so the server's 422 says what is wrong.
    input = (
      <textarea
        {...common}
        class="json-input"
        rows={3}
        spellcheck={false}
        value={raw}
        placeholder={field.description?.match(/\{.*\}|\[.*\]/)?.[0] ?? "JSON"}
        onInput={(e) => {
          const v = (e.target as HTMLTextAreaElement).value;
          setRaw(v);
          onChange(parseJson(v));
        }}
      />
    );
  } else if (field.kind === "array" && field.options) {
    // A list of choices: one checkbox each, in the schema's order.
    const chosen = Array.isArray(value) ? value.map(String) : [];
    input = (
      <span class="choices" id={id}>
        {field.options.map((o) => (
          <label key={o} class="inline">
            <input type="checkbox" checked={chosen.includes(o)} onChange={() => onChange(field.options?.filter((x) => (x === o ? !chosen.includes(o) : chosen.includes(x))))} /> {o}
          </label>
        ))}
      </span>
    );
  } else if (field.kind === "array") {
    // list[str]: one argv item per line, so values with spaces stay one item.
    input = (
      <textarea
        {...common}
        rows={2}
        value={Array.isArray(value) ? value.join("\n") : ""}
        placeholder="one item per line"
        onInput={(e) => {
          const lines = (e.target as HTMLTextAreaElement).value.split("\n");
          onChange(lines.filter((l, i) => l !== "" || i < lines.length - 1));
        }}
      />
    );
  } else {
    const listId = field.picker ? `${id}-options` : undefined;
    input = (
      <input
        {...common}
        type="text"
        autoComplete="off"
        spellcheck={false}
        list={listId}
        value={display(value)}
        placeholder={field.nullable ? "(empty)" : undefined}
        onInput={(e) => {
          const v = (e.target as HTMLInputElement).value;
          onChange(v === "" && field.nullable ? null : v);
        }}
      />
    );
  }

  return (
    <div class={`field field-${field.kind}${invalid ? " field-invalid" : ""}`} data-field={field.path}>
      <label for={id}>{field.title}</label>
      <div class="field-control">
        {input}
        {field.picker ? (
          <Picker
            field={field}
            files={files ?? []}
            value={value}
            // A list field (several dirs or files) gets the picked path appended.
            onChange={field.kind === "array" ? (v) => onChange([...(Array.isArray(value) ? value : []), v]) : onChange}
          />
        ) : null}
      </div>
      {field.description || hint ? (
        <div id={helpId} class="field-help">
          {field.description}
          {hint ? <span class="muted"> ({hint})</span> : null}
        </div>
      ) : null}
      {invalid ? (
        <div id={errId} class="field-error" role="alert" data-testid={`error-${field.path}`}>
          {errors.join(" ")}
        </div>
      ) : null}
    </div>
  );
}

const GROUP_LABELS: Record<string, string> = {
  extended: "Extended tokenizers",
  tokenizers: "Models' tokenizers",
  runs: "Run outputs and checkpoints",
};

/** Entries in the API's order, split by group (none: one unnamed group). */
function groups(files: FileEntry[]): [string | null, FileEntry[]][] {
  const out: [string | null, FileEntry[]][] = [];
  for (const f of files) {
    const g = f.group ?? null;
    const last = out[out.length - 1];
    if (last && last[0] === g) last[1].push(f);
    else out.push([g, [f]]);
  }
  return out;
}

const option = (f: FileEntry) => (
  <option key={f.path} value={f.path}>
    {f.label}
  </option>
);

/** Offers the directories the API found under the allowed roots; the text box stays editable. */
export function Picker({ field, files, value, onChange }: { field: FieldSpec; files: FileEntry[]; value: unknown; onChange: (v: unknown) => void }) {
  const id = fieldId(field.path);
  const current = files.some((f) => f.path === value) ? String(value) : "";
  return (
    <>
      <datalist id={`${id}-options`}>
        {files.map((f) => (
          <option key={f.path} value={f.path}>
            {f.label}
          </option>
        ))}
      </datalist>
      <select
        class="picker"
        aria-label={`${field.title}: pick one of ${files.length} found`}
        value={current}
        disabled={files.length === 0}
        onChange={(e) => {
          const v = (e.target as HTMLSelectElement).value;
          if (v) onChange(v);
        }}
      >
        <option value="">{files.length ? `${files.length} found…` : `none found`}</option>
        {groups(files).map(([group, list]) =>
          group ? (
            <optgroup key={group} label={GROUP_LABELS[group] ?? group} data-group={group}>
              {list.map(option)}
            </optgroup>
          ) : (
            list.map(option)
          ),
        )}
      </select>
    </>
  );
}
