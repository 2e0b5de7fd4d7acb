// Benchmark scores of the compared runs: each task and metric at each run's latest evaluated
// checkpoint (GET /api/scores/latest), one column a run.

import type { Run, Score } from "../api/types";
import { useApi } from "../api/usePoll";
import { qs } from "../api/client";

export function CompareScores({ runs }: { runs: Run[] }) {
  const ids = runs.map((r) => r.id);
  const latest = useApi<Record<string, Score[]>>(ids.length ? `/scores/latest${qs({ run: ids })}` : null).data;
  if (!latest) return null;
  const keys = [...new Set(ids.flatMap((id) => (latest[id] ?? []).map((s) => `${s.task}\u0000${s.metric}`)))].sort();
  if (keys.length === 0) return null;
  return (
    <section class="card" aria-labelledby="cmp-bench-h" data-testid="compare-scores">
      <h2 id="cmp-bench-h">Benchmarks (latest evaluated checkpoint)</h2>
      <table class="scores">
        <thead>
          <tr>
            <th>Task</th>
            <th>Metric</th>
            {runs.map((r) => (
              <th key={r.id}>{r.name || r.id}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {keys.map((key) => {
            const [task, metric] = key.split("\u0000");
            return (
              <tr key={key}>
                <td>{task}</td>
                <td>{metric}</td>
                {runs.map((r) => {
                  const s = (latest[r.id] ?? []).find((x) => x.task === task && x.metric === metric);
                  return (
                    <td key={r.id} title={s ? s.checkpoint : undefined}>
                      {s?.value != null ? s.value.toFixed(4) : "—"}
                      {s?.stderr != null ? <span class="muted"> ± {s.stderr.toFixed(4)}</span> : null}
                    </td>
                  );
                })}
              </tr>
            );
          })}
        </tbody>
      </table>
    </section>
  );
}
