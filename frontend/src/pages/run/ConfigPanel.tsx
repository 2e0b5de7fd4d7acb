// What the run is: the command each attempt ran (or will run), its full config, its output dir.

import type { Run, RunCommand } from "../../api/types";
import { useApi } from "../../api/usePoll";
import { CopyButton } from "../../components/CopyButton";

export function ConfigPanel({ run }: { run: Run }) {
  // The worker reports the argv when it launches: read again when the status moves.
  const cmd = useApi<RunCommand>(`/runs/${run.id}/command`, { refresh: `${run.attempt}/${run.status}` }).data;
  // What ran, per attempt, as the worker launched it; before any launch, what will run.
  const launched = cmd?.attempts ?? [];
  const command = launched.length ? launched[launched.length - 1].command : (cmd?.command ?? null);
  return (
    <section class="card" aria-labelledby="config-h">
      <div class="section-head">
        <h2 id="config-h">Config</h2>
        <div class="spacer" />
        {command ? <CopyButton text={command} label="Copy as CLI" /> : null}
        <CopyButton text={JSON.stringify(run.config, null, 2)} label="Copy JSON" />
      </div>
      {launched.length ? (
        [...launched].reverse().map((a) => (
          <div class="attempt-command" key={a.attempt} data-testid="attempt-command" data-attempt={a.attempt}>
            <h3>Attempt {a.attempt} ran</h3>
            <pre class="command" data-testid={a.attempt === run.attempt ? "run-command" : undefined}>
              {a.command}
            </pre>
          </div>
        ))
      ) : command ? (
        <div class="attempt-command">
          <h3>Will run</h3>
          <pre class="command" data-testid="run-command">
            {command}
          </pre>
        </div>
      ) : null}
      <details>
        <summary>Full config{run.preset ? ` (from preset ${run.preset})` : ""}</summary>
        <pre class="config-json">{JSON.stringify(run.config, null, 2)}</pre>
      </details>
      <p class="muted small">
        Output: <code>{run.output_dir ?? "–"}</code>
      </p>
    </section>
  );
}
