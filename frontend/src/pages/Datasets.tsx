// Datasets: scan a directory (or files) on a worker before training on it: files, documents,
// characters, script, tokens and blocks for a tokenizer, the first documents as the .txt document
// option cuts them, and what will be skipped; or clean sources into a new dataset (the Clean tab).

import { CHARACTER_DEFINITION } from "../api/contract";
import type { Job } from "../api/types";
import { CleanResult } from "../components/CleanResult";
import { CleanSteps } from "../components/CleanSteps";
import { bytes, int } from "../lib/format";
import { navigate } from "../lib/router";
import { JobsPage } from "./Jobs";

const TXT_MODES: Record<string, string> = {
  line: "one per line",
  blank_line: "one per paragraph (up to a blank line)",
  file: "the whole file",
};

function ScanResult({ job }: { job: Job }) {
  const r = job.result ?? {};
  const files: any[] = r.files ?? [];
  const t = r.totals ?? {};
  const mode = String(r.txt_documents ?? job.params?.txt_documents ?? "line");
  return (
    <div class="scan-result">
      <p class="small" data-testid="scan-txt-documents" data-mode={mode}>
        Documents in .txt files: <strong>{TXT_MODES[mode] ?? mode}</strong>
      </p>
      <p data-testid="scan-totals">
        {int(t.files ?? files.length)} files · {bytes(t.bytes)} · {int(t.documents)} documents · {int(t.characters)} characters
        {t.tokens != null ? ` · ${int(t.tokens)} tokens · ${int(t.blocks)} blocks` : ""}
      </p>
      <table class="table scan-files" data-testid="scan-files">
        <thead>
          <tr>
            <th>File</th>
            <th>Script</th>
            <th>Documents</th>
            <th title={CHARACTER_DEFINITION}>Characters (code points)</th>
            <th>Tokens</th>
            <th>Blocks</th>
            <th>First documents (as cut)</th>
          </tr>
        </thead>
        <tbody>
          {files.map((f) => (
            <tr key={f.path} data-file={f.path} class={f.skip ? "skipped" : ""}>
              <td class="mono small">{String(f.path).split("/").slice(-2).join("/")}</td>
              <td>{f.main_script ?? "–"}</td>
              <td>{int(f.documents)}</td>
              <td>{int(f.characters)}</td>
              <td>{f.tokens != null ? int(f.tokens) : "–"}</td>
              <td>{f.blocks != null ? int(f.blocks) : "–"}</td>
              <td class="small">
                {f.skip ? (
                  <span class="field-error">skipped: {f.skip}</span>
                ) : (
                  <ol class="first-docs" data-testid="first-docs">
                    {((f.first_documents ?? f.first_lines ?? []) as string[]).map((d, i) => (
                      <li key={i}>{d}</li>
                    ))}
                  </ol>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Tabs({ clean }: { clean: boolean }) {
  return (
    <nav class="tabs" aria-label="Dataset tools">
      <a href="#/datasets" aria-current={clean ? undefined : "page"}>
        Scan
      </a>{" "}
      ·{" "}
      <a href="#/datasets/clean" aria-current={clean ? "page" : undefined}>
        Clean
      </a>
    </nav>
  );
}

/** Clean: sources → steps the user orders → a new dataset (#/datasets/clean/<job id>). */
function Clean({ selected }: { selected: string | null }) {
  return (
    <>
      <Tabs clean />
      <JobsPage
        key="clean"
        kind="clean"
        title="Clean a corpus"
        intro="Make a new dataset from one or more sources: identify languages, remove exact and near duplicates, filter by quality and mask PII, in the order you give; see what each step removed before you train on it."
        submitLabel="Clean"
        selected={selected}
        route="datasets/clean"
        onSelect={(id) => navigate(`/datasets/clean/${id}`)}
        renderResult={(job) => <CleanResult job={job} />}
        custom={{ steps: (p) => <CleanSteps schema={p.schema} value={p.value} errors={p.errors} onChange={p.onChange} /> }}
      />
    </>
  );
}

export function Datasets({ selected, sub, query }: { selected: string | null; sub?: string | null; query?: URLSearchParams }) {
  if (selected === "clean") return <Clean selected={sub ?? null} />;
  const initial: Record<string, unknown> = {};
  if (query?.get("paths")) initial.paths = [query.get("paths")];
  if (query?.get("tokenizer")) initial.tokenizer = query.get("tokenizer");
  if (query?.get("block_size")) initial.block_size = Number(query.get("block_size"));
  return (
    <>
      <Tabs clean={false} />
      <JobsPage
        key="scan"
        kind="scan"
        title="Datasets"
        intro="Scan a dataset on a worker: documents, characters, scripts, and the tokens and blocks a tokenizer makes of it, before any run is launched."
        submitLabel="Scan"
        selected={selected}
        onSelect={(id) => navigate(`/datasets/${id}`)}
        renderResult={(job) => <ScanResult job={job} />}
        initial={initial}
      />
    </>
  );
}
