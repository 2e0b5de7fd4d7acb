"""``extend``: the whole tokenizer workshop in one step, as the panel's tokenizer job runs it.

Train pieces on the new language's text, append them to the base (SentencePiece: a trained
model's pieces; byte-level BPE: merges learned from the base's own segmentation), then measure
fertility of base vs extended on held-out text, check that every added token can fire, and tokenize
one sentence of each text with both. Returns (and the CLI writes) one JSON document.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from worker.tokenizer.check import check_extension
from worker.tokenizer.fast import load_fast
from worker.tokenizer.fertility import byte_level_bytes, fertility, read_labelled_texts
from worker.tokenizer.loading import detect_family, load_tokenizer
from worker.tokenizer.output import check_new_output

EXAMPLE_CHARS = 160


def _piece(tokenizer: Any, token_id: int) -> str:
    # One id decoded alone reads as text; a piece that is part of a character shows its bytes.
    text = str(tokenizer.decode([token_id]))
    if "\ufffd" not in text:
        return text
    raw = byte_level_bytes(str(tokenizer.convert_ids_to_tokens(token_id)))
    return "".join(f"<{b:02X}>" for b in raw) if raw else text


def _pieces(tokenizer: Any, text: str) -> tuple[list[str], list[int]]:
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    return [_piece(tokenizer, i) for i in ids], ids


def _first_sentence(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:EXAMPLE_CHARS]
    return ""


def extend(
    base: str | Path,
    inputs: Sequence[str | Path],
    output: str | Path,
    *,
    model_type: str = "bpe",
    vocab_size: int = 8000,
    character_coverage: float | None = None,
    max_new: int | None = None,
    texts: Sequence[str | Path] = (),
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    say = progress or (lambda _msg: None)
    started = time.monotonic()
    out = check_new_output(Path(output))
    family = detect_family(Path(base), "--base")
    if family == "sentencepiece":
        from worker.tokenizer.merge_sp import merge_sentencepiece
        from worker.tokenizer.train import train

        with tempfile.TemporaryDirectory(prefix="cpt-sp-") as tmp:
            trained = Path(tmp) / "sp"
            train(inputs, model_type, vocab_size, trained, character_coverage, progress=say)
            merged = merge_sentencepiece(base, trained, out, max_new, progress=say)
    else:
        from worker.tokenizer.merge_bpe import merge_byte_level_bpe

        merged = merge_byte_level_bpe(base, inputs, out, max_new or vocab_size, progress=say)
    say(merged.summary())

    measured_on = list(texts) or list(inputs)
    # A byte-level BPE extension is measured and checked with tokenizers alone: importing
    # transformers and building its tokenizers would take longer than the merge itself.
    files_only = family == "byte_level_bpe"
    load = load_fast if files_only else load_tokenizer
    report = fertility([base, out], measured_on, load)
    check = check_extension(base, out, files_only=files_only)
    base_tok, ext_tok = load(base, "--base"), load(out, "--output")
    rows: dict[str, dict[str, Any]] = {}
    for row in report.rows:
        side = "base" if row.tokenizer == str(base) else "extended"
        rows.setdefault(row.label, {"label": row.label})[side] = {
            "tokens_per_word": row.tokens_per_word,
            "tokens_per_char": row.tokens_per_char,
            "bytes_per_token": row.bytes_per_token,
            "unknown_rate": row.unknown_rate,
            "byte_fallback_rate": row.byte_fallback_rate,
            "new_share": row.new_token_rate,
        }
    examples = []
    for label, text in read_labelled_texts(measured_on):
        sentence = _first_sentence(text)
        if not sentence:
            continue
        base_pieces, _ = _pieces(base_tok, sentence)
        ext_pieces, ext_ids = _pieces(ext_tok, sentence)
        examples.append(
            {
                "label": label,
                "text": sentence,
                "base": base_pieces,
                "extended": ext_pieces,
                "extended_ids": ext_ids,
            }
        )
    result = {
        "output": str(out),
        "family": merged.family,
        "base": str(base),
        "base_vocab": merged.base_size,
        "vocab_size": merged.size,
        "added": merged.added,
        "dropped_unreachable": merged.dropped_unreachable,
        "unreachable": [text for _, text in check.unreachable],
        "unreachable_count": len(check.unreachable),
        "base_ids_unchanged": not check.changed_base_ids,
        "behaviour_differences": check.behaviour,
        "fertility": list(rows.values()),
        "examples": examples,
        "measured_on": [str(p) for p in measured_on],
        "seconds": round(time.monotonic() - started, 2),
    }
    say(
        f"extend: {merged.base_size} + {merged.added} tokens, {len(check.unreachable)} unreachable, "
        f"{result['seconds']} s"
    )
    return result
