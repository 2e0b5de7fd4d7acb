// The tokenizer workshop: extend a base tokenizer with a new language's pieces, then read the
// answer: fertility per language (base vs extended), a sentence tokenized by both, and how
// many added tokens can never fire. "Use in a new run" opens the launch form with it.

import { CHARACTER_DEFINITION } from "../api/contract";
import type { Job } from "../api/types";
import { int, num } from "../lib/format";
import { navigate } from "../lib/router";
import { JobsPage } from "./Jobs";

interface Fert {
  tokens_per_word: number;
  tokens_per_char: number;
  bytes_per_token: number;
  unknown_rate: number;
  new_share: number;
}

const pct = (a: number, b: number) => (a > 0 ? `${b >= a ? "+" : "−"}${Math.abs(((b - a) / a) * 100).toFixed(1)} %` : "–");

function Pieces({ pieces, baseVocab, ids }: { pieces: string[]; baseVocab: number; ids?: number[] }) {
  return (
    <span class="pieces">
      {pieces.map((p, i) => (
        <span key={i} class={`piece${ids && ids[i] >= baseVocab ? " piece-new" : ""}`} title={ids ? `id ${ids[i]}` : undefined}>
          {p}
        </span>
      ))}
    </span>
  );
}

function TokenizerResult({ job }: { job: Job }) {
  const r = job.result ?? {};
  const rows: { label: string; base: Fert; extended: Fert }[] = r.fertility ?? [];
  return (
    <div class="tokenizer-result">
      <p data-testid="tokenizer-summary">
        {int(r.base_vocab)} base tokens + <strong>{int(r.added)} added</strong> = {int(r.vocab_size)}
        {" · "}
        <span data-testid="unreachable">{r.unreachable_count ?? r.unreachable?.length ?? 0} unreachable</span>
        {" · base ids "}
        {r.base_ids_unchanged ? "unchanged" : "CHANGED"}
      </p>
      <table class="table fertility" data-testid="fertility">
        <thead>
          <tr>
            <th>Text</th>
            <th>Tokens / word (base → extended)</th>
            <th>Change</th>
            <th title={CHARACTER_DEFINITION}>Tokens / character (code point)</th>
            <th>Bytes / token</th>
            <th>New-token share</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <tr key={row.label} data-lang={row.label}>
              <td>{row.label}</td>
              <td>
                {num(row.base.tokens_per_word, 3)} → {num(row.extended.tokens_per_word, 3)}
              </td>
              <td>{pct(row.base.tokens_per_word, row.extended.tokens_per_word)}</td>
              <td>
                {num(row.base.tokens_per_char, 3)} → {num(row.extended.tokens_per_char, 3)}
              </td>
              <td>
                {num(row.base.bytes_per_token, 2)} → {num(row.extended.bytes_per_token, 2)}
              </td>
              <td>{(row.extended.new_share * 100).toFixed(1)} %</td>
            </tr>
          ))}
        </tbody>
      </table>
      {(r.examples ?? []).map((ex: any) => (
        <div key={ex.label} class="example" data-testid="example">
          <div class="small muted">{ex.label}</div>
          <div>
            base ({ex.base.length}): <Pieces pieces={ex.base} baseVocab={r.base_vocab} />
          </div>
          <div>
            extended ({ex.extended.length}): <Pieces pieces={ex.extended} ids={ex.extended_ids} baseVocab={r.base_vocab} />
          </div>
        </div>
      ))}
      <p class="mono small">{r.output}</p>
      <button type="button" class="btn btn-primary" onClick={() => navigate(`/launch?tokenizer=${encodeURIComponent(r.output)}${r.base ? `&base=${encodeURIComponent(r.base)}` : ""}`)}>
        Use in a new run
      </button>
    </div>
  );
}

export function Tokenizers({ selected }: { selected: string | null }) {
  return (
    <JobsPage
      kind="tokenizer"
      title="Tokenizers"
      intro="Train SentencePiece pieces on the new language's text, append them to a base tokenizer (its first ids stay the same), and measure fertility per language."
      submitLabel="Extend tokenizer"
      selected={selected}
      onSelect={(id) => navigate(`/tokenizers/${id}`)}
      renderResult={(job) => <TokenizerResult job={job} />}
    />
  );
}
