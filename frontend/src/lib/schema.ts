// Turns the run-config JSON Schema (pydantic's output) into a flat list of form fields.
// Only the shapes pydantic emits for RunConfig are handled: $ref sections, scalars,
// Optional[...] as anyOf [..., null], Literal[...] as enum, list[str], and structured values
// (dicts, lists of objects) as JSON text.

export type FieldKind = "string" | "integer" | "number" | "boolean" | "enum" | "array" | "json";

export interface FieldSpec {
  section: string;
  key: string;
  /** "training.learning_rate": the form's id for the field and for its 422 errors. */
  path: string;
  title: string;
  description?: string;
  kind: FieldKind;
  nullable: boolean;
  options?: string[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  pattern?: string;
  advanced: boolean;
  picker?: "model" | "adapter" | "tokenizer" | "dataset";
  default?: unknown;
}

export interface SectionSpec {
  key: string;
  title: string;
  description?: string;
  fields: FieldSpec[];
}

type Json = Record<string, any>;

function resolve(root: Json, node: Json): Json {
  if (node && typeof node.$ref === "string") {
    const name = node.$ref.replace(/^#\/\$defs\//, "");
    return { ...root.$defs?.[name], ...node, $ref: undefined };
  }
  return node;
}

/** "max_train_samples" -> "Max train samples" when the schema has no title of its own. */
function humanize(key: string): string {
  const s = key.replace(/_/g, " ");
  return s.charAt(0).toUpperCase() + s.slice(1).toLowerCase();
}

function toField(section: string, key: string, prop: Json): FieldSpec {
  let nullable = false;
  let body: Json = prop;
  if (Array.isArray(prop.anyOf)) {
    const nonNull = prop.anyOf.filter((p: Json) => p.type !== "null");
    nullable = nonNull.length < prop.anyOf.length;
    body = { ...nonNull[0] };
  }
  let kind: FieldKind;
  if (Array.isArray(body.enum)) kind = "enum";
  else if (body.type === "integer") kind = "integer";
  else if (body.type === "number") kind = "number";
  else if (body.type === "boolean") kind = "boolean";
  // Structured values (a mapping, a list of objects): edited as JSON, checked by the server.
  else if (body.type === "object" || (body.type === "array" && (body.items?.$ref || body.items?.type === "object"))) kind = "json";
  else if (body.type === "array") kind = "array";
  else kind = "string";
  // pydantic titles fields without an explicit title "Max Grad Norm": sentence case reads better.
  const auto = key
    .split("_")
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join(" ");
  const title = typeof prop.title === "string" && prop.title !== auto ? prop.title : humanize(key);
  return {
    section,
    key,
    path: `${section}.${key}`,
    title,
    description: prop.description,
    kind,
    nullable,
    // A list of choices (training.report_to): its items' values, offered as checkboxes.
    options: body.enum?.map(String) ?? (kind === "array" && Array.isArray(body.items?.enum) ? body.items.enum.map(String) : undefined),
    minimum: body.minimum,
    maximum: body.maximum,
    exclusiveMinimum: body.exclusiveMinimum,
    exclusiveMaximum: body.exclusiveMaximum,
    pattern: body.pattern,
    advanced: prop.advanced === true,
    picker: prop.picker,
    default: prop.default,
  };
}

export function sectionsFromSchema(schema: Json): SectionSpec[] {
  return Object.entries<Json>(schema.properties ?? {}).map(([key, raw]) => {
    const sec = resolve(schema, raw);
    return {
      key,
      title: sec.title ?? humanize(key),
      description: sec.description,
      fields: Object.entries<Json>(sec.properties ?? {}).map(([k, p]) => toField(key, k, p)),
    };
  });
}

/** A short human hint of the allowed range, e.g. "> 0, ≤ 1". */
export function rangeHint(f: FieldSpec): string {
  const parts: string[] = [];
  if (f.exclusiveMinimum !== undefined) parts.push(`> ${f.exclusiveMinimum}`);
  if (f.minimum !== undefined) parts.push(`≥ ${f.minimum}`);
  if (f.exclusiveMaximum !== undefined) parts.push(`< ${f.exclusiveMaximum}`);
  if (f.maximum !== undefined) parts.push(`≤ ${f.maximum}`);
  return parts.join(", ");
}

export function getIn(obj: Json, path: string): unknown {
  return path.split(".").reduce<any>((o, k) => (o == null ? undefined : o[k]), obj);
}

/** Immutable set of a dotted path. */
export function setIn<T extends Json>(obj: T, path: string, value: unknown): T {
  const [head, ...rest] = path.split(".");
  const copy: Json = { ...obj };
  copy[head] = rest.length ? setIn(copy[head] ?? {}, rest.join("."), value) : value;
  return copy as T;
}

/** Flatten {a: {b: 1}} into {"a.b": 1} (used by the config diff). */
export function flatten(obj: unknown, prefix = "", out: Record<string, unknown> = {}): Record<string, unknown> {
  if (obj && typeof obj === "object" && !Array.isArray(obj)) {
    for (const [k, v] of Object.entries(obj)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else {
    out[prefix] = obj;
  }
  return out;
}

const SECTION_RE = /\b(model|data|method|training|launch)\.([A-Za-z_]+)/;

/**
 * Where a 422 item belongs in the form: "training.learning_rate", "name", or "" (the whole form).
 * Cross-field checks arrive at loc [body, config] and name the field in their message.
 */
export function errorPath(loc: (string | number)[], msg: string): string {
  const rest = loc[0] === "body" ? loc.slice(1) : loc;
  if (rest[0] === "config") {
    if (rest.length >= 3) return `${rest[1]}.${rest[2]}`;
    const m = SECTION_RE.exec(msg);
    if (m) return `${m[1]}.${m[2]}`;
    return rest.length === 2 ? String(rest[1]) : "";
  }
  return rest.length ? String(rest[0]) : "";
}

/** pydantic prefixes model-validator messages with "Value error, ". */
export function cleanMsg(msg: string): string {
  return msg.replace(/^Value error, /, "");
}

/** The fields of one flat model (a job's parameters): paths are "<prefix>.<key>". */
export function fieldsFromModel(schema: Json, prefix: string): FieldSpec[] {
  return Object.entries<Json>(schema.properties ?? {}).map(([k, p]) => toField(prefix, k, p));
}
