// The data the run trains on, per source (share of the training tokens and the tokens planned
// from it, files, documents, tokens, blocks); a replay source is marked.

import { useRef } from "preact/hooks";
import { qs } from "../../api/client";
import type { RunEvent } from "../../api/types";
import { useApi } from "../../api/usePoll";
import { int } from "../../lib/format";

/** One entry of the `start` event's `data_sources` (written by the training script). */
interface SourceSummary {
  name: string;
  weight: number;
  files: number;
  documents: number;
  tokens: number | null;
  blocks: number | null;
  /** "replay": the base language, drawn at data.replay_share of the training tokens. */
  role?: string | null;
  /** The fraction of the training tokens drawn from it, and those tokens for this run. */
  share?: number | null;
  planned_tokens?: number | null;
}

/** The data the run trains on, per source, as the training script reported it at start. */
export function DataMix({ runId, started, version }: { runId: string; started: boolean; version: number }) {
  // Read once the run has started, and again on each live update until the start event is there.
  const found = useRef(false);
  const events = useApi<RunEvent[]>(started ? `/runs/${runId}/events${qs({ limit: 50 })}` : null, { refresh: found.current || version });
  const start = events.data?.find((e) => e.kind === "start" && Array.isArray(e.data.data_sources));
  const sources = (start?.data.data_sources as SourceSummary[] | undefined) ?? null;
  found.current = sources !== null;
  if (!sources || sources.length === 0) return null;
  const totalW = sources.reduce((a, s) => a + s.weight, 0) || 1;
  return (
    <section class="card" aria-labelledby="mix-h" data-testid="data-mix">
      <h2 id="mix-h">Data</h2>
      <table class="table">
        <thead>
          <tr>
            <th>Source</th>
            <th class="num">Share of tokens</th>
            <th class="num">Planned tokens</th>
            <th class="num">Files</th>
            <th class="num">Documents</th>
            <th class="num">Tokens</th>
            <th class="num">Blocks</th>
          </tr>
        </thead>
        <tbody>
          {sources.map((s) => (
            <tr key={s.name} data-source={s.name}>
              <td>
                {s.name}
                {s.role === "replay" ? <span class="muted"> (replay)</span> : null}
              </td>
              <td class="num" data-testid="source-share">
                {((s.share ?? s.weight / totalW) * 100).toFixed(1)} %
              </td>
              <td class="num" data-testid="source-planned">
                {int(s.planned_tokens ?? null)}
              </td>
              <td class="num">{int(s.files)}</td>
              <td class="num">{int(s.documents)}</td>
              <td class="num">{int(s.tokens)}</td>
              <td class="num">{int(s.blocks)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
