// "Columns" menu of the runs table: built-in columns, any metric's last/best, any config field
// (from the run-config schema, so every field the form knows is offered).

import { useMemo, useState } from "preact/hooks";
import { useApi } from "../api/usePoll";
import { BUILTIN, COMMON_METRICS, DEFAULT_COLUMNS } from "../lib/runColumns";
import { sectionsFromSchema, type SectionSpec } from "../lib/schema";

interface Props {
  columns: string[];
  metricKeys: string[];
  onChange: (ids: string[]) => void;
}

export function ColumnChooser({ columns, metricKeys, onChange }: Props) {
  const { data: schema } = useApi<Record<string, unknown>>("/schema/run-config");
  const specs: SectionSpec[] = useMemo(() => (schema ? sectionsFromSchema(schema) : []), [schema]);
  const [filter, setFilter] = useState("");
  const toggle = (id: string) => onChange(columns.includes(id) ? columns.filter((c) => c !== id) : [...columns, id]);
  const f = filter.trim().toLowerCase();
  const shown = (id: string, label: string) => !f || id.toLowerCase().includes(f) || label.toLowerCase().includes(f);
  const box = (id: string, label: string) =>
    shown(id, label) ? (
      <label key={id} class="chooser-item">
        <input type="checkbox" checked={columns.includes(id)} onChange={() => toggle(id)} data-column={id} /> {label}
      </label>
    ) : null;
  const metrics = [...new Set([...COMMON_METRICS, ...metricKeys])];
  return (
    <details class="column-chooser" data-testid="column-chooser">
      <summary class="btn">Columns</summary>
      <div class="chooser-panel" role="group" aria-label="Columns to show">
        <input type="search" placeholder="Find a field or metric…" value={filter} onInput={(e) => setFilter((e.target as HTMLInputElement).value)} aria-label="Find a column" />
        <fieldset>
          <legend>Run</legend>
          {BUILTIN.map((c) => box(c.id, c.label))}
        </fieldset>
        <fieldset>
          <legend>Metrics</legend>
          {metrics.map((m) => [box(`metric.${m}.last`, `${m} · last`), box(`metric.${m}.best`, `${m} · best`)])}
        </fieldset>
        {specs.map((s) => (
          <fieldset key={s.key}>
            <legend>Config · {s.title}</legend>
            {s.fields.map((fs) => box(`config.${fs.path}`, fs.path))}
          </fieldset>
        ))}
        <button type="button" class="btn btn-small" onClick={() => onChange(DEFAULT_COLUMNS)}>
          Reset to defaults
        </button>
      </div>
    </details>
  );
}
