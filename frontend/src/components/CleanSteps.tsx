// The clean job's steps: the user adds, orders and removes them; each step's thresholds are
// inputs generated from its model in the job schema (defaults shown, ranges from the schema),
// and the server's 422 for a step's field is shown at that field.

import { FormField } from "./FormField";
import { fieldsFromModel } from "../lib/schema";

type Json = Record<string, any>;

/** The step models by their tag ("language" -> LanguageStep's schema), in the contract's order. */
export function stepModels(schema: Json): [string, Json][] {
  const items = schema.properties?.steps?.items ?? {};
  const mapping: Record<string, string> = items.discriminator?.mapping ?? {};
  const tagOf = Object.fromEntries(Object.entries(mapping).map(([tag, ref]) => [ref, tag]));
  return (items.oneOf ?? []).map((o: Json): [string, Json] => [tagOf[o.$ref] ?? o.$ref, schema.$defs?.[String(o.$ref).replace(/^#\/\$defs\//, "")] ?? {}]);
}

function defaults(model: Json, tag: string): Json {
  const out: Json = { step: tag };
  for (const [k, p] of Object.entries<Json>(model.properties ?? {})) if (p.default !== undefined) out[k] = p.default;
  return out;
}

interface Props {
  schema: Json;
  value: Json[] | undefined;
  errors: Record<string, string[]>;
  onChange: (steps: Json[]) => void;
}

export function CleanSteps({ schema, value, errors, onChange }: Props) {
  const steps = Array.isArray(value) ? value : [];
  const models = stepModels(schema);
  const byTag = Object.fromEntries(models);
  const set = (i: number, next: Json | null) => {
    const copy = [...steps];
    if (next === null) copy.splice(i, 1);
    else copy[i] = next;
    onChange(copy);
  };
  const move = (i: number, by: number) => {
    const copy = [...steps];
    [copy[i], copy[i + by]] = [copy[i + by], copy[i]];
    onChange(copy);
  };
  // Errors of the list itself (too few steps, an unknown kind); a step's field shows its own.
  const placed = new Set(
    Object.entries(errors)
      .filter(([k]) => k.startsWith("params.steps."))
      .flatMap(([, msgs]) => msgs),
  );
  const listErrors = (errors["params.steps"] ?? []).filter((m) => !placed.has(m));
  return (
    <fieldset class="clean-steps" aria-label="Steps">
      <legend>Steps, in order</legend>
      {steps.length === 0 ? <p class="muted small">No step yet: add one below.</p> : null}
      <ol>
        {steps.map((step, i) => {
          const model = byTag[step.step] ?? {};
          const fields = fieldsFromModel(model, `steps.${i}`).filter((f) => f.key !== "step");
          return (
            <li key={i} class="card clean-step" data-step={step.step}>
              <div class="clean-step-head">
                <strong>
                  {i + 1}. {model.title ?? step.step}
                </strong>
                <span class="muted small"> {model.description ?? ""}</span>
                <span class="clean-step-actions">
                  <button type="button" class="btn btn-small" aria-label={`Move step ${i + 1} up`} disabled={i === 0} onClick={() => move(i, -1)}>
                    ↑
                  </button>
                  <button type="button" class="btn btn-small" aria-label={`Move step ${i + 1} down`} disabled={i === steps.length - 1} onClick={() => move(i, 1)}>
                    ↓
                  </button>
                  <button type="button" class="btn btn-small" aria-label={`Remove step ${i + 1}`} onClick={() => set(i, null)}>
                    Remove
                  </button>
                </span>
              </div>
              {fields.map((f) => (
                <FormField key={f.path} field={f} value={step[f.key]} errors={errors[`params.steps.${i}.${step.step}.${f.key}`] ?? []} onChange={(v) => set(i, { ...step, [f.key]: v })} />
              ))}
            </li>
          );
        })}
      </ol>
      {listErrors.length ? (
        <div class="field-error" role="alert">
          {listErrors.join(" ")}
        </div>
      ) : null}
      <div class="clean-add">
        {models.map(([tag, model]) => (
          <button key={tag} type="button" class="btn btn-small" onClick={() => onChange([...steps, defaults(model, tag)])}>
            + {model.title ?? tag}
          </button>
        ))}
      </div>
    </fieldset>
  );
}
