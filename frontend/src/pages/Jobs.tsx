// A page of jobs of one kind (tokenizer extensions, dataset scans): a form generated from the
// kind's parameter schema, the jobs as the server reports them (polled while any is live),
// and the selected job's log and result. Nothing shown is computed here: status, duration and
// figures all come from the API.

import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, api, post } from "../api/client";
import { ACTIVE_STATUSES, type Job, type JobKind, type JobLog } from "../api/types";
import { POLL, useApi, useFiles } from "../api/usePoll";
import { FormField } from "../components/FormField";
import { StatusBadge } from "../components/StatusBadge";
import { useMe, whyNot } from "../lib/me";
import { ago, duration } from "../lib/format";
import { cleanMsg, fieldsFromModel, getIn, setIn, type FieldSpec } from "../lib/schema";

type Errors = Record<string, string[]>;

function toErrors(err: unknown): Errors {
  const out: Errors = {};
  if (err instanceof ApiError && err.status === 422 && err.validation.length) {
    for (const item of err.validation) {
      // ["body", "params", "corpus", 0] -> "params.corpus"
      const path = item.loc.slice(1, 3).join(".");
      (out[path] ??= []).push(cleanMsg(item.msg));
      // The whole path too, for a custom field that places errors inside a list of objects.
      if (item.loc.length > 3) (out[item.loc.slice(1).join(".")] ??= []).push(cleanMsg(item.msg));
    }
  } else out[""] = [err instanceof Error ? err.message : String(err)];
  return out;
}

interface Props {
  kind: JobKind;
  title: string;
  intro: ComponentChildren;
  submitLabel: string;
  renderResult: (job: Job) => ComponentChildren;
  selected: string | null;
  onSelect: (id: string) => void;
  /** Parameters to start the form with (from a link), over the schema's defaults. */
  initial?: Record<string, unknown>;
  /** Fields drawn by the page itself instead of a generated input (by parameter name). */
  custom?: Record<string, CustomField>;
  /** The hash route of a job of this page ("datasets/clean" -> #/datasets/clean/<id>). */
  route?: string;
  /** What to show while a job runs (a download's progress). */
  renderLive?: (job: Job) => ComponentChildren;
  /** The name a job is listed by (default: its ``name`` parameter, else its id). */
  label?: (job: Job) => string;
}

export type CustomField = (props: { schema: Record<string, any>; value: any; errors: Errors; onChange: (value: unknown) => void }) => ComponentChildren;

export function JobsPage(props: Props) {
  const { kind, title, intro, submitLabel, renderResult, selected, onSelect, initial, custom } = props;
  const route = props.route ?? (kind === "scan" ? "datasets" : "tokenizers");
  const label = props.label ?? ((j: Job) => String(j.params.name || j.id));
  const [fields, setFields] = useState<FieldSpec[]>([]);
  const [schema, setSchema] = useState<Record<string, any>>({});
  const [params, setParams] = useState<Record<string, any>>({});
  const files = useFiles(["tokenizer", "dataset", "model"] as const);
  const [errors, setErrors] = useState<Errors>({});
  const [busy, setBusy] = useState(false);

  // The kind's parameters and their defaults (under what the link gave), once per kind.
  const { data: allSchemas } = useApi<Record<string, any>>("/schema/jobs");
  useEffect(() => {
    if (!allSchemas) return;
    const fs = fieldsFromModel(allSchemas[kind], "params");
    setFields(fs);
    setSchema(allSchemas[kind]);
    const init: Record<string, any> = {};
    for (const f of fs) if (f.default !== undefined) init[f.key] = f.default;
    setParams({ params: { ...init, ...(initial ?? {}) } });
  }, [allSchemas, kind]);

  // Read while any job of the kind is queued or running; once more when the last one ends.
  const [live, setLive] = useState(true);
  const list = useApi<Job[]>(`/jobs?kind=${kind}`, { every: live ? POLL.live : null });
  const jobs = list.data ?? [];
  const anyActive = jobs.some((j) => ACTIVE_STATUSES.has(j.status));
  useEffect(() => setLive(anyActive), [anyActive]);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    try {
      const job = await post<Job>("/jobs", { kind, params: params.params ?? {} });
      setErrors({});
      list.reload();
      onSelect(job.id);
    } catch (err) {
      setErrors(toErrors(err));
    } finally {
      setBusy(false);
    }
  };

  const current = jobs.find((j) => j.id === selected) ?? null;
  return (
    <section class="page">
      <h1>{title}</h1>
      <p class="muted">{intro}</p>
      <form class="card job-form" onSubmit={submit} aria-label={`New ${kind} job`}>
        {fields.map((f) =>
          custom?.[f.key] ? (
            <div key={f.path}>
              {custom[f.key]({
                schema,
                value: getIn(params, f.path),
                errors,
                onChange: (v) => setParams((p) => setIn({ ...p }, f.path, v)),
              })}
            </div>
          ) : (
            <FormField
              key={f.path}
              field={f}
              value={getIn(params, f.path)}
              errors={errors[f.path] ?? []}
              files={f.picker ? files[f.picker] : undefined}
              onChange={(v) => setParams((p) => setIn({ ...p }, f.path, v))}
            />
          ),
        )}
        {errors[""] ? (
          <div class="field-error" role="alert">
            {errors[""].join(" ")}
          </div>
        ) : null}
        <button type="submit" class="btn btn-primary" disabled={busy}>
          {submitLabel}
        </button>
      </form>
      <h2>Jobs</h2>
      {jobs.length === 0 ? <p class="muted">None yet.</p> : null}
      <table class="table jobs-table">
        <thead>
          <tr>
            <th>Job</th>
            <th>Status</th>
            <th>Created</th>
            <th>Duration</th>
          </tr>
        </thead>
        <tbody>
          {jobs.map((j) => (
            <tr key={j.id} data-job-id={j.id} data-status={j.status} class={j.id === selected ? "selected" : ""}>
              <td>
                <a href={`#/${route}/${j.id}`} onClick={() => onSelect(j.id)}>
                  {label(j)}
                </a>
              </td>
              <td>
                <StatusBadge status={j.status} />
                {j.status_reason ? <div class="small muted">{j.status_reason}</div> : null}
              </td>
              <td>{ago(j.created_at)}</td>
              <td>{j.duration_seconds != null ? duration(j.duration_seconds) : "–"}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {current ? <JobDetail job={current} renderResult={renderResult} renderLive={props.renderLive} label={label} /> : null}
    </section>
  );
}

interface DetailProps {
  job: Job;
  renderResult: (job: Job) => ComponentChildren;
  renderLive?: (job: Job) => ComponentChildren;
  label: (job: Job) => string;
}

function JobDetail({ job, renderResult, renderLive, label }: DetailProps) {
  const [log, setLog] = useState("");
  const next = useRef(0);
  useEffect(() => {
    setLog("");
    next.current = 0;
  }, [job.id]);
  useEffect(() => {
    if (next.current >= job.log_size && job.log_size > 0) return;
    api<JobLog>(`/jobs/${job.id}/log?after=${next.current}`).then((r) => {
      if (!r.text) return;
      next.current = r.next;
      setLog((l) => l + r.text);
    });
  }, [job.id, job.log_size]);
  const cancel = () => post(`/jobs/${job.id}/cancel`);
  const denied = whyNot(useMe(), job.owner, "job");
  // A tool that reports progress prints "progress: ..." lines (the worker measured them).
  const progress = ACTIVE_STATUSES.has(job.status) ? lastProgress(log) : null;
  return (
    <div class="card job-detail" data-testid="job-detail">
      <h2>
        {label(job)} <StatusBadge status={job.status} />
      </h2>
      {renderLive ? renderLive(job) : null}
      {ACTIVE_STATUSES.has(job.status) && job.status !== "cancelling" ? (
        <button type="button" class="btn btn-small" disabled={!!denied} title={denied ?? undefined} onClick={cancel}>
          Cancel
        </button>
      ) : null}
      {job.owner ? <p class="muted small">owner: {job.owner}</p> : null}
      {progress ? (
        <p class="small" data-testid="job-progress">
          {progress}
        </p>
      ) : null}
      {job.status === "succeeded" && job.result ? renderResult(job) : null}
      <details open={job.status !== "succeeded"}>
        <summary>Log</summary>
        <pre class="log job-log">{log}</pre>
      </details>
    </div>
  );
}

function lastProgress(log: string): string | null {
  const at = log.lastIndexOf("\nprogress: ");
  if (at < 0 && !log.startsWith("progress: ")) return null;
  const start = at < 0 ? 0 : at + 1;
  const end = log.indexOf("\n", start);
  return log.slice(start + "progress: ".length, end < 0 ? undefined : end);
}
