// Models: every model under the allowed roots as the server describes it from its files
// (architecture, parameters, vocabulary, tied head, dtype, size, where it came from), and the two
// ways to add one: a download from the Hub (live progress as the download tool measured it, pushed
// over the job's stream) and
// the import of a GGUF file. A half-done download is never listed: it lives in a dot directory
// until it is complete.

import { useEffect, useState } from "preact/hooks";
import { useJobStream } from "../api/useJobStream";
import { useApi } from "../api/usePoll";
import { ACTIVE_STATUSES, type Job, type ModelInfo } from "../api/types";
import { bytes, duration, int } from "../lib/format";
import { navigate } from "../lib/router";
import { JobsPage } from "./Jobs";

function source(m: ModelInfo): string {
  const s = m.source;
  if (s.kind === "hub") return `Hub: ${s.hub_id}@${s.revision} (${String(s.commit ?? "").slice(0, 8)})`;
  if (s.kind === "import") return `imported ${s.format ?? ""}: ${String(s.file).split("/").pop()}`;
  if (s.kind === "merge") return `merge of run ${s.run_id}, ${s.checkpoint}`;
  return "local";
}

function ModelsTable({ refresh }: { refresh: number }) {
  const models = useApi<ModelInfo[]>("/models", { refresh }).data;
  if (models === null) return <p class="muted">Loading…</p>;
  if (!models.length) return <p class="muted">No model under the allowed roots yet.</p>;
  return (
    <table class="table models-table" data-testid="models">
      <thead>
        <tr>
          <th>Model</th>
          <th>Architecture</th>
          <th>Parameters</th>
          <th>Vocabulary</th>
          <th>Embeddings</th>
          <th>dtype</th>
          <th>Size</th>
          <th>From</th>
        </tr>
      </thead>
      <tbody>
        {models.map((m) => (
          <tr key={m.path} data-model={m.path}>
            <td class="mono small" title={m.path}>
              {m.label}
            </td>
            <td>{m.architecture ?? m.model_type ?? "–"}</td>
            <td>{m.params != null ? int(m.params) : "–"}</td>
            <td>
              {m.vocab_size != null ? int(m.vocab_size) : "–"}
              {m.tokenizer_vocab_size != null && m.tokenizer_vocab_size !== m.vocab_size ? ` (tokenizer ${int(m.tokenizer_vocab_size)})` : ""}
            </td>
            <td>{m.tied_embeddings == null ? "–" : m.tied_embeddings ? "tied" : "untied"}</td>
            <td>{m.dtypes.join(", ") || "–"}</td>
            <td>{bytes(m.size_bytes)}</td>
            <td class="small">{source(m)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function DownloadProgress({ job }: { job: Job }) {
  const live = ACTIVE_STATUSES.has(job.status);
  const p = useJobStream(job.id, live)?.progress;
  if (!p) return live ? <p class="muted">Waiting for the first progress report…</p> : null;
  const pct = p.total_bytes ? Math.floor((100 * (p.bytes ?? 0)) / p.total_bytes) : 0;
  return (
    <div class="download-progress" data-testid="download-progress">
      <progress max={100} value={pct} />
      <span>
        {pct} % · {bytes(p.bytes)} of {bytes(p.total_bytes)} · {p.files}/{p.total_files} files
        {p.bytes_per_second ? ` · ${bytes(p.bytes_per_second)}/s` : ""}
        {live && p.eta_seconds != null ? ` · ${duration(p.eta_seconds)} left` : ""}
      </span>
    </div>
  );
}

function Done({ job, onSaved }: { job: Job; onSaved: () => void }) {
  const r = job.result ?? {};
  // A job that just finished added a model: read the list again.
  useEffect(onSaved, [job.id]);
  return (
    <p data-testid="model-path">
      Saved to <span class="mono">{r.path}</span>
      {r.bytes != null ? ` · ${bytes(r.bytes)}` : ""}
    </p>
  );
}

export function Models({ selected }: { selected: string | null }) {
  const [refresh, setRefresh] = useState(0);
  const select = (id: string) => {
    navigate(`/models/${id}`);
    setRefresh((n) => n + 1);
  };
  const done = (job: Job) => <Done job={job} onSaved={() => setRefresh((n) => n + 1)} />;
  return (
    <>
      <section class="page">
        <h1>Models</h1>
        <p class="muted">Every model under the allowed roots, as its files describe it: parameters and dtype from the weights' headers, the vocabulary from its config and tokenizer.</p>
        <ModelsTable refresh={refresh} />
      </section>
      <JobsPage
        kind="download"
        route="models"
        title="Get from the Hub"
        intro="Download a model (or a dataset's files) by its Hub id into the panel's models (datasets) root; it is listed once complete. A cancelled download resumes when started again."
        submitLabel="Download"
        selected={selected}
        onSelect={select}
        label={(j) => `${j.params.repo_id}${j.params.revision && j.params.revision !== "main" ? `@${j.params.revision}` : ""}`}
        renderLive={(job) => <DownloadProgress job={job} />}
        renderResult={done}
      />
      <JobsPage
        kind="import"
        route="models"
        title="Import a GGUF file"
        intro="Convert a .gguf file (as Ollama or LM Studio keep models) into a plain Hugging Face directory in the models root."
        submitLabel="Import"
        selected={selected}
        onSelect={select}
        renderResult={done}
      />
    </>
  );
}
