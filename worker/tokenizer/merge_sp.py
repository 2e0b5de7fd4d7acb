"""Extend a SentencePiece tokenizer (Llama-2, Mistral: ``tokenizer.model``) with new pieces.

Chinese-LLaMA's recipe: the new model's pieces that the base lacks are appended to the base's
``ModelProto``, so every base piece keeps its id. For a BPE base the new pieces score below
every base piece, in the new model's order: SentencePiece applies them only where no base merge
applies, and the transformers conversion (merge rank = piece id) does the same, so text the base
already handles keeps its tokens. A unigram base over a unigram model keeps the new model's
log-probabilities. Pieces that encoding their own text does not produce are dropped (a few
rounds: dropping one can strand another).

``tokenizer.model`` and the transformers files (``tokenizer.json``) are written together; the
base's ``tokenizer_config.json``, ``special_tokens_map.json`` and chat template are copied
unchanged, so BOS/EOS behaviour, special tokens, ``model_max_length`` and the class stay the
base's.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from worker.tokenizer.check import behaviour_differences, changed_base_ids, unreachable_tokens
from worker.tokenizer.errors import TokenizerInputError
from worker.tokenizer.loading import SIDE_FILES, copy_side_files, load_tokenizer
from worker.tokenizer.merge_result import SUMMARY_NAME, MergeResult
from worker.tokenizer.output import atomic_output_dir
from worker.tokenizer.sp_proto import (
    NORMAL,
    USER_DEFINED,
    model_type_name,
    new_piece,
    read_model_file,
)

#: Llama/Mistral give a few forced pieces (runs of ``▁``) scores near -1e9; new pieces are
#: ranked below the ordinary base pieces, not below those.
_OUTLIER_SCORE = -1e6
_MAX_ROUNDS = 8


def resolve_add_model(add: str | Path) -> Path:
    path = Path(add)
    if path.is_file():
        return path
    if path.is_dir() and (path / "tokenizer.model").is_file():
        return path / "tokenizer.model"
    raise TokenizerInputError(
        "--add",
        f"{add} is neither a SentencePiece .model file nor a directory with tokenizer.model",
    )


def _select(
    base_vocab: set[str], add_proto: Any, max_new: int | None
) -> tuple[list[tuple[str, float]], int]:
    """New (piece, own score) in the new model's order, and how many the base already had.

    With ``max_new``, a piece is taken only with the characters it needs (so it is reachable).
    """
    chosen: list[tuple[str, float]] = []
    have = set(base_vocab)
    kinds = (NORMAL, USER_DEFINED)
    skipped = sum(1 for p in add_proto.pieces if p.type in kinds and p.piece in base_vocab)
    own = {p.piece: p.score for p in add_proto.pieces}
    for p in add_proto.pieces:
        if p.type not in kinds or p.piece in base_vocab:
            continue
        if p.piece in have:
            continue
        needed = [c for c in dict.fromkeys(p.piece) if c not in have and c != p.piece]
        if max_new is not None and len(chosen) + len(needed) + 1 > max_new:
            if len(chosen) >= max_new:
                break
            continue
        for c in needed:
            chosen.append((c, own.get(c, p.score)))
            have.add(c)
        chosen.append((p.piece, p.score))
        have.add(p.piece)
    return chosen, skipped


def _build_proto(
    base_proto: Any, placeholders: list[str], new: list[tuple[str, float]], own_scores: bool
) -> Any:
    proto = type(base_proto)()
    proto.CopyFrom(base_proto)
    for content in placeholders:
        proto.pieces.append(new_piece(content, 0.0, USER_DEFINED))
    scores = [p.score for p in base_proto.pieces if p.type == NORMAL and p.score > _OUTLIER_SCORE]
    floor = min(scores, default=0.0)
    for k, (piece, score) in enumerate(new):
        proto.pieces.append(new_piece(piece, score if own_scores else floor - 1.0 - k))
    return proto


def _placeholders(base_proto: Any, base_tok: Any) -> list[str]:
    """Tokens the base adds after its SentencePiece vocabulary, kept at their ids."""
    n_sp = len(base_proto.pieces)
    extra = base_tok.convert_ids_to_tokens(list(range(n_sp, len(base_tok))))
    if any(t is None for t in extra):
        raise TokenizerInputError(
            "--base", "its added tokens leave gaps after the SentencePiece vocabulary"
        )
    return [str(t) for t in extra]


def _write(tmp: Path, base: Path, proto: Any) -> Any:
    """Write the proto and the base's side files; the transformers tokenizer converted from them."""
    for name in ("tokenizer.json",):
        (tmp / name).unlink(missing_ok=True)
    (tmp / "tokenizer.model").write_bytes(proto.SerializeToString())
    copy_side_files(base, tmp)
    return load_tokenizer(tmp, "--base")


def merge_sentencepiece(
    base: str | Path,
    add: str | Path,
    output: str | Path,
    max_new: int | None = None,
    progress: Callable[[str], None] | None = None,
    source: str | None = None,
) -> MergeResult:
    """Append ``add``'s new pieces to ``base``; write the extension to ``output``.

    ``source`` names where the pieces came from in the summary (default: ``add``).
    """
    say = progress or (lambda _msg: None)
    started = time.monotonic()
    base_dir = Path(base)
    with atomic_output_dir(Path(output)) as tmp:
        base_proto = read_model_file(base_dir / "tokenizer.model", "--base")
        add_path = resolve_add_model(add)
        add_proto = read_model_file(add_path, "--add")
        base_tok = load_tokenizer(base_dir, "--base")
        n_base = len(base_tok)
        placeholders = _placeholders(base_proto, base_tok)
        new, skipped = _select({p.piece for p in base_proto.pieces}, add_proto, max_new)
        kind = model_type_name(base_proto)
        own_scores = kind == "unigram" and model_type_name(add_proto) == "unigram"
        say(
            f"merge: base {base_dir} ({kind} SentencePiece, {n_base} tokens); "
            f"{len(new)} new pieces from {add_path} ({skipped} already in the base) ..."
        )
        dropped = 0
        for _round in range(_MAX_ROUNDS):
            tok = _write(tmp, base_dir, _build_proto(base_proto, placeholders, new, own_scores))
            bad = {token for _, token in unreachable_tokens(tok, n_base)}
            if not bad:
                break
            dropped += len(bad)
            say(f"merge: {len(bad)} pieces unreachable by the merged model, dropped")
            new = [(p, s) for p, s in new if p not in bad]
        else:
            raise RuntimeError("merge: unreachable pieces remain after several rounds")
        if (base_dir / "tokenizer.json").is_file():
            # The base ships the converted form too (then transformers reads BOS/EOS from
            # tokenizer.json's post-processor, not add_bos_token): so does the extension.
            # save_pretrained rewrites the config (dropping add_bos_token): the base's own
            # side files are put back.
            tok.save_pretrained(str(tmp))
        # Without a tokenizer.json (like the base) transformers converts tokenizer.model at
        # load time and honours the config's add_bos_token/add_eos_token.
        for name in SIDE_FILES:  # what save_pretrained wrote and the base does not have
            if not (base_dir / name).is_file():
                (tmp / name).unlink(missing_ok=True)
        copied = copy_side_files(base_dir, tmp)
        _verify(base_tok, tmp, n_base + len(new))
        result = MergeResult(
            output=str(Path(output).absolute()),
            family=f"sentencepiece-{kind}",
            base=str(base_dir),
            base_size=n_base,
            added=len(new),
            size=n_base + len(new),
            skipped_existing=skipped,
            dropped_unreachable=dropped,
            source=source or str(add_path),
            copied_files=copied,
            seconds=round(time.monotonic() - started, 3),
        )
        (tmp / SUMMARY_NAME).write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    say(result.summary())
    return result


def _verify(base_tok: Any, out: Path, size: int) -> None:
    """The written files load as the extension they should be (a failure here is a bug)."""
    final = load_tokenizer(out, "--output")
    problems = behaviour_differences(base_tok, final)
    if len(final) != size:
        problems.append(f"{len(final)} tokens instead of {size}")
    elif changed_base_ids(base_tok, final):
        problems.append("base ids changed")
    if problems:
        raise RuntimeError("merge produced a wrong tokenizer: " + "; ".join(problems))


def merge_sentencepiece_text(
    base: str | Path,
    inputs: Sequence[str | Path],
    output: str | Path,
    vocab_size: int,
    max_new: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> MergeResult:
    """Train a BPE SentencePiece model of ``vocab_size`` pieces on ``inputs``, then merge it."""
    from worker.tokenizer.corpus import read_corpus
    from worker.tokenizer.output import check_new_output
    from worker.tokenizer.train import train_model_proto

    target = check_new_output(Path(output))
    corpus = read_corpus(inputs, "--input")
    data = train_model_proto(corpus.lines, "bpe", vocab_size)
    with tempfile.TemporaryDirectory(prefix=f".{target.name}.add-", dir=target.parent) as tmp:
        model = Path(tmp) / "tokenizer.model"
        model.write_bytes(data)
        label = "trained on " + ", ".join(str(p) for p in corpus.files)
        return merge_sentencepiece(base, model, output, max_new, progress, source=label)
