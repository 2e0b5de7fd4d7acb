"""Extend a byte-level BPE tokenizer (Llama-3, SmolLM2, Qwen: ``tokenizer.json``) with merges.

BPE training continues from where the base stopped: the new text is pre-tokenized by the
base's own pre-tokenizer and segmented by the base's own merges, then the most frequent
adjacent pair is merged, again and again. Each new merge's two parts are tokens (of the base or
added before it), each creates one new token, and the merges are appended in the order learned,
after all of the base's. Because the base applies its merges first and the new ones in the
order they were learned, encoding a new token's own text rebuilds it through the same chain;
the result is verified and a token that is not produced is dropped with the tokens built from
it. Text the base already segments completely keeps its tokens.

Only ``tokenizer.json`` changes; the base's ``tokenizer_config.json``, special tokens and chat
template are copied unchanged.

Speed (the job runs this on the whole corpus): words are counted and segmented by the base
once per distinct segment of the text, one chunk per CPU (``bpe_count.py``), and the merge
loop is tokenizers' BpeTrainer (Rust) over those segmentations (each base token one
character), whose merges are read back as pairs of the base's tokens. Nothing here imports
transformers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from worker.tokenizer.bpe_count import token_id_of, trainer_feed
from worker.tokenizer.corpus import read_corpus
from worker.tokenizer.errors import TokenizerInputError
from worker.tokenizer.fast import FastTokenizer, load_fast, side_differences
from worker.tokenizer.loading import copy_side_files, read_tokenizer_json
from worker.tokenizer.merge_result import SUMMARY_NAME, MergeResult
from worker.tokenizer.output import atomic_output_dir

Pair = tuple[str, str]


def learn_merges(
    feed: Sequence[str],
    used: Iterable[int],
    token_of: Callable[[int], str | None],
    vocab: set[str],
    max_new: int,
    min_frequency: int = 2,
) -> list[Pair]:
    """Continue BPE training on the base's segmentations: up to ``max_new`` merges, most
    frequent first, each of two tokens (the base's or learned before it); a merge whose text
    is already a token is never taken.

    The loop is tokenizers' BpeTrainer over ``feed`` (``bpe_count.trainer_feed``: each word a
    string of one character per base token, as often as it occurs); its merges are read back
    as pairs of tokens. A merge whose text is already a token (the base builds it another way)
    is not taken; the trainer is asked for a few more merges than wanted to make up for those,
    and again with more when that was not enough."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    alphabet = len(set(used))
    if not feed:
        return []
    text_of: dict[str, str] = {}

    def text(chars: str) -> str:
        for c in chars:
            if c not in text_of:
                text_of[c] = token_of(token_id_of(c)) or ""
        return "".join(text_of[c] for c in chars)

    extra = max(100, max_new // 10)
    while True:
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        trainer = trainers.BpeTrainer(
            vocab_size=alphabet + max_new + extra,
            min_frequency=min_frequency,
            show_progress=False,
            limit_alphabet=alphabet,
        )
        tok.train_from_iterator(feed, trainer, length=len(feed))
        raw = json.loads(tok.to_str())["model"]["merges"]
        merges: list[Pair] = []
        known = set(vocab)
        for item in raw:
            x, y = item.split(" ") if isinstance(item, str) else item
            a, b = text(x), text(y)
            if a + b in known:
                continue
            known.add(a + b)
            merges.append((a, b))
            if len(merges) == max_new:
                return merges
        if len(raw) < max_new + extra or extra >= max_new * 4:
            return merges  # the text has no more pairs of min_frequency
        extra *= 2


def _max_id(spec: dict[str, Any]) -> int:
    ids = list(spec["model"]["vocab"].values()) + [t["id"] for t in spec.get("added_tokens", [])]
    return max(ids)


def extend_spec(spec: dict[str, Any], merges: Sequence[Pair]) -> tuple[dict[str, Any], list[str]]:
    """A copy of ``spec`` with ``merges`` appended; the new tokens in id order."""
    # Only the model's vocabulary and merges change: copy those, share the rest.
    out = dict(spec)
    out["model"] = dict(spec["model"])
    vocab: dict[str, int] = dict(spec["model"]["vocab"])
    base_merges: list[Any] = list(spec["model"]["merges"])
    out["model"]["vocab"], out["model"]["merges"] = vocab, base_merges
    as_text = bool(base_merges) and isinstance(base_merges[0], str)
    next_id = _max_id(spec) + 1
    new_tokens = []
    for a, b in merges:
        vocab[a + b] = next_id
        next_id += 1
        base_merges.append(f"{a} {b}" if as_text else [a, b])
        new_tokens.append(a + b)
    return out, new_tokens


def unreachable_new(model: Any, vocab: dict[str, int], new_tokens: Sequence[str]) -> set[str]:
    """New tokens that the extended ``model`` does not produce from their own text."""
    bad = set()
    for token in new_tokens:
        pieces = model.tokenize(token)
        if len(pieces) != 1 or pieces[0].id != vocab[token]:
            bad.add(token)
    return bad


def drop(merges: Sequence[Pair], bad: set[str]) -> list[Pair]:
    """``merges`` without those that make a ``bad`` token or are built from a dropped one."""
    kept: list[Pair] = []
    gone = set(bad)
    for a, b in merges:
        if a + b in gone or a in gone or b in gone:
            gone.add(a + b)
            continue
        kept.append((a, b))
    return kept


def merge_byte_level_bpe(
    base: str | Path,
    inputs: Sequence[str | Path],
    output: str | Path,
    max_new: int = 10000,
    min_frequency: int = 2,
    progress: Callable[[str], None] | None = None,
) -> MergeResult:

    say = progress or (lambda _msg: None)
    started = time.monotonic()
    base_dir = Path(base)
    with atomic_output_dir(Path(output)) as tmp:
        spec = read_tokenizer_json(base_dir / "tokenizer.json", "--base")
        corpus = read_corpus(inputs, "--input")  # bad text fails before the base loads
        backend = load_fast(base_dir, "--base").backend_tokenizer
        n_base = backend.get_vocab_size(with_added_tokens=True)
        if _max_id(spec) + 1 != n_base:
            raise TokenizerInputError(
                "--base", f"its ids are not contiguous (largest {_max_id(spec)}, {n_base} tokens)"
            )
        feed, used, distinct = trainer_feed(backend, corpus.lines)
        say(
            f"merge: base {base_dir} (byte-level BPE, {n_base} tokens); learning up to {max_new} "
            f"merges from {len(corpus.lines)} lines ({distinct} distinct pre-tokens) ..."
        )
        vocab = set(spec["model"]["vocab"]) | {t["content"] for t in spec.get("added_tokens", [])}
        merges = learn_merges(feed, used, backend.id_to_token, vocab, max_new, min_frequency)
        dropped = 0
        while True:
            extended, new_tokens = extend_spec(spec, merges)
            # No indent: json's C encoder (an indented 50k-token file takes a second).
            (tmp / "tokenizer.json").write_text(
                json.dumps(extended, ensure_ascii=False) + "\n", encoding="utf-8"
            )
            final = load_fast(tmp, "--output")
            bad = unreachable_new(
                final.backend_tokenizer.model, extended["model"]["vocab"], new_tokens
            )
            if not bad:
                break
            kept = drop(merges, bad)
            dropped += len(merges) - len(kept)
            say(
                f"merge: {len(merges) - len(kept)} merges unreachable in the extended model, dropped"
            )
            merges = kept
        copied = copy_side_files(base_dir, tmp)
        _verify(base_dir, load_fast(base_dir, "--base"), spec, tmp, final, n_base + len(merges))
        result = MergeResult(
            output=str(Path(output).absolute()),
            family="byte-level-bpe",
            base=str(base_dir),
            base_size=n_base,
            added=len(merges),
            size=n_base + len(merges),
            dropped_unreachable=dropped,
            source=", ".join(str(p) for p in corpus.files),
            copied_files=copied,
            seconds=round(time.monotonic() - started, 3),
        )
        (tmp / SUMMARY_NAME).write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    say(result.summary())
    return result


def _verify(
    base: Path, base_tok: FastTokenizer, spec: dict[str, Any], out: Path, final: FastTokenizer,
    size: int,
) -> None:  # fmt: skip
    """The written tokenizer has ``size`` tokens, keeps every base id and behaves as the base
    apart from the new merges (same side files, same components)."""
    problems = side_differences(base, out, base_tok, final)
    got = len(final)
    if got != size:
        problems.append(f"{got} tokens instead of {size}")
    vocab = final.backend_tokenizer.get_vocab(with_added_tokens=True)
    base_ids = dict(spec["model"]["vocab"])
    base_ids.update({t["content"]: t["id"] for t in spec.get("added_tokens", [])})
    if any(vocab.get(token) != i for token, i in base_ids.items()):
        problems.append("base ids changed")
    if problems:
        raise RuntimeError("merge produced a wrong tokenizer: " + "; ".join(problems))
