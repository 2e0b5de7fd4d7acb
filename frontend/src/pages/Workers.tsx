// GPU boxes and what runs on each GPU. Heartbeats arrive every few seconds, so polling at the
// same pace is as fresh as a stream would be.

import { POLL, useApi } from "../api/usePoll";
import type { Gpu, SlurmCluster, Worker } from "../api/types";
import { ago } from "../lib/format";
import { runHref } from "../lib/router";
import { useNow } from "../lib/useNow";

function Meter({ value, max, label, text }: { value: number | null; max: number; label: string; text: string }) {
  const pct = value === null ? 0 : Math.min(100, (100 * value) / max);
  return (
    <div class="meter" title={text}>
      <div class="meter-bar" role="meter" aria-label={label} aria-valuemin={0} aria-valuemax={max} aria-valuenow={value ?? undefined}>
        <div class={`meter-fill${pct > 90 ? " hot" : ""}`} style={{ width: `${pct}%` }} />
      </div>
      <span class="small mono">{text}</span>
    </div>
  );
}

function GpuRow({ g }: { g: Gpu }) {
  const mem = g.memory_used_mb !== null && g.memory_total_mb ? `${(g.memory_used_mb / 1024).toFixed(1)} / ${(g.memory_total_mb / 1024).toFixed(1)} GB` : "–";
  return (
    <tr>
      <td class="mono">{g.index}</td>
      <td>{g.name}</td>
      <td>
        <Meter value={g.memory_used_mb} max={g.memory_total_mb || 1} label={`GPU ${g.index} memory`} text={mem} />
      </td>
      <td>
        <Meter value={g.utilization_pct} max={100} label={`GPU ${g.index} utilisation`} text={g.utilization_pct === null ? "–" : `${g.utilization_pct}%`} />
      </td>
      <td>{g.run_id ? <a href={runHref(g.run_id)}>{g.run_id}</a> : <span class="muted">idle</span>}</td>
    </tr>
  );
}

function slurmTime(minutes: number | null): string {
  if (minutes === null) return "unlimited";
  const total = Math.round(minutes * 60);
  const d = Math.floor(total / 86400);
  const h = Math.floor((total % 86400) / 3600);
  const m = Math.floor((total % 3600) / 60);
  const clock = `${String(h).padStart(2, "0")}:${String(m).padStart(2, "0")}`;
  return d ? `${d}-${clock}` : clock;
}

// The Slurm cluster a login-node worker submits to, as its last heartbeat's sinfo saw it.
function Cluster({ c }: { c: SlurmCluster }) {
  if (c.error && c.partitions.length === 0) {
    return <p class="error small">Slurm not reachable: {c.error}</p>;
  }
  return (
    <table class="table partitions">
      <thead>
        <tr>
          <th>Partition</th>
          <th>State</th>
          <th>Idle nodes</th>
          <th>Allocated</th>
          <th>Other</th>
          <th>Total</th>
          <th>Max time</th>
        </tr>
      </thead>
      <tbody>
        {c.partitions.map((p) => (
          <tr key={p.name} data-partition={p.name}>
            <td class="mono">
              {p.name}
              {p.name === c.default_partition ? <span class="muted small"> (default)</span> : null}
            </td>
            <td>{p.available ? "up" : <span class="error">down</span>}</td>
            <td class="mono">{p.nodes_idle}</td>
            <td class="mono">{p.nodes_allocated}</td>
            <td class="mono">{p.nodes_other}</td>
            <td class="mono">{p.nodes_total}</td>
            <td class="mono">{slurmTime(p.max_time_minutes)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function Workers() {
  const { data: workers, error } = useApi<Worker[]>("/workers", { every: POLL.idle });
  const now = useNow();

  return (
    <section class="page">
      <div class="page-head">
        <h1>Workers</h1>
      </div>
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : null}
      {workers?.length === 0 ? (
        <p class="empty">
          No worker has checked in. Start one on a GPU box with <code>python -m backend.cli worker</code>.
        </p>
      ) : null}
      <div class="workers">
        {workers?.map((w) => (
          <article key={w.name} class="card worker" data-worker={w.name}>
            <header class="worker-head">
              <span class={`dot ${w.alive ? "dot-ok" : "dot-bad"}`} aria-hidden="true" />
              <h2>{w.name}</h2>
              <span class="muted small">
                {w.alive ? "online" : "offline"} · heartbeat {ago(w.last_heartbeat, now)}
              </span>
            </header>
            <dl class="kv">
              <dt>Host</dt>
              <dd>{w.host}</dd>
              <dt>Queue</dt>
              <dd class="mono">{w.queue}</dd>
              <dt>Concurrency</dt>
              <dd>{w.concurrency}</dd>
              <dt>Runs</dt>
              <dd>
                {w.current_runs.length ? (
                  w.current_runs.map((id) => (
                    <a key={id} href={runHref(id)} class="mono">
                      {id}{" "}
                    </a>
                  ))
                ) : (
                  <span class="muted">none</span>
                )}
              </dd>
            </dl>
            {w.executor === "slurm" ? (
              <>
                <p class="muted small">Slurm executor: runs are submitted with sbatch.</p>
                {w.cluster ? <Cluster c={w.cluster} /> : null}
              </>
            ) : w.cpu_only || w.gpus.length === 0 ? (
              <p class="muted small">CPU only: no GPU on this box.</p>
            ) : (
              <table class="table gpus">
                <thead>
                  <tr>
                    <th>GPU</th>
                    <th>Model</th>
                    <th>Memory</th>
                    <th>Utilisation</th>
                    <th>Run</th>
                  </tr>
                </thead>
                <tbody>
                  {w.gpus.map((g) => (
                    <GpuRow key={g.index} g={g} />
                  ))}
                </tbody>
              </table>
            )}
          </article>
        ))}
      </div>
    </section>
  );
}
