"""Checks of an extended tokenizer against its base (``python -m worker.tokenizer check``).

- every added token is reachable: the tokenizer's model turns the token's own string (its
  pre-tokenized form, e.g. ``▁ಕನ್ನಡ`` or ``Ġä½łå¥½``) into exactly that token; an added special
  token is matched whole when its text is encoded;
- the base's ids are unchanged (the first ``len(base)`` ids map to the same tokens);
- special tokens, chat template, ``model_max_length``, the BOS/EOS the tokenizer adds and its
  class equal the base's;
- text in the base's languages (e.g. English) keeps its tokens per word within ``tolerance``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from worker.tokenizer.fertility import FertilityRow, measure_files
from worker.tokenizer.loading import backend_of, load_tokenizer

#: A text that exercises the special tokens a tokenizer adds around a sequence.
PROBE = "Hello world"


def unreachable_tokens(tokenizer: Any, first_id: int) -> list[tuple[int, str]]:
    """Tokens with id >= ``first_id`` that encoding their own text does not produce."""
    backend = backend_of(tokenizer)
    if backend is None:
        raise ValueError("a tokenizer without a tokenizers backend cannot be checked")
    model = backend.model
    added = {int(i): t.content for i, t in tokenizer.added_tokens_decoder.items()}
    out: list[tuple[int, str]] = []
    for token_id in range(first_id, len(tokenizer)):
        if token_id in added:
            content = added[token_id]
            if tokenizer.encode(content, add_special_tokens=False) != [token_id]:
                out.append((token_id, content))
            continue
        token = backend.id_to_token(token_id)
        if token is None:
            out.append((token_id, ""))
            continue
        pieces = model.tokenize(token)
        if len(pieces) != 1 or pieces[0].id != token_id:
            out.append((token_id, token))
    return out


def changed_base_ids(base: Any, extended: Any) -> list[int]:
    """Ids below ``len(base)`` whose token differs in ``extended``."""
    n = len(base)
    old = base.convert_ids_to_tokens(list(range(n)))
    new = extended.convert_ids_to_tokens(list(range(n)))
    return [i for i, (a, b) in enumerate(zip(old, new, strict=True)) if a != b]


def _special_frame(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The special ids a tokenizer puts before and after a plain text."""
    ids = tokenizer(PROBE)["input_ids"]
    plain = tokenizer(PROBE, add_special_tokens=False)["input_ids"]
    for start in range(len(ids) - len(plain) + 1):
        if ids[start : start + len(plain)] == plain:
            return ids[:start], ids[start + len(plain) :]
    return ids, []


def behaviour_differences(base: Any, extended: Any) -> list[str]:
    """What an extension must keep from its base and does not (empty: nothing)."""
    problems = []
    if type(base).__name__ != type(extended).__name__:
        problems.append(f"class {type(extended).__name__} != base {type(base).__name__}")
    if base.special_tokens_map != extended.special_tokens_map:
        problems.append(
            f"special tokens {extended.special_tokens_map} != base {base.special_tokens_map}"
        )
    if base.chat_template != extended.chat_template:
        problems.append("the chat template differs from the base's")
    if base.model_max_length != extended.model_max_length:
        problems.append(
            f"model_max_length {extended.model_max_length} != base {base.model_max_length}"
        )
    for flag in ("add_bos_token", "add_eos_token"):
        a, b = getattr(base, flag, None), getattr(extended, flag, None)
        if a != b:
            problems.append(f"{flag} {b} != base {a}")
    if _special_frame(base) != _special_frame(extended):
        problems.append(
            f"special tokens around a text {_special_frame(extended)} != base {_special_frame(base)}"
        )
    return problems


@dataclass
class FertilityComparison:
    label: str
    base_tokens_per_word: float
    extended_tokens_per_word: float
    change: float
    within_tolerance: bool


@dataclass
class CheckReport:
    """Outcome of ``check``; ``passed`` is the verdict."""

    base: str
    extended: str
    base_size: int
    extended_size: int
    added: int
    unreachable: list[tuple[int, str]] = field(default_factory=list)
    changed_base_ids: list[int] = field(default_factory=list)
    behaviour: list[str] = field(default_factory=list)
    fertility: list[FertilityComparison] = field(default_factory=list)
    tolerance: float = 0.02
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return (
            not self.unreachable
            and not self.changed_base_ids
            and not self.behaviour
            and all(f.within_tolerance for f in self.fertility)
            and self.extended_size >= self.base_size
        )

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["passed"] = self.passed
        out["unreachable"] = [{"id": i, "token": t} for i, t in self.unreachable]
        out["changed_base_ids"] = self.changed_base_ids[:100]
        out["n_changed_base_ids"] = len(self.changed_base_ids)
        return out

    def lines(self) -> list[str]:
        ok = "PASS" if self.passed else "FAIL"
        out = [
            f"check {ok}: {self.extended} ({self.extended_size} tokens) over {self.base} "
            f"({self.base_size}), {self.added} added",
            f"  unreachable added tokens: {len(self.unreachable)}"
            + (f" (e.g. {[t for _, t in self.unreachable[:5]]})" if self.unreachable else ""),
            f"  base ids changed: {len(self.changed_base_ids)}"
            + (f" (e.g. {self.changed_base_ids[:5]})" if self.changed_base_ids else ""),
            f"  behaviour differences: {len(self.behaviour)}"
            + "".join(f"\n    {p}" for p in self.behaviour),
        ]
        for f in self.fertility:
            mark = "ok" if f.within_tolerance else "OUT OF TOLERANCE"
            out.append(
                f"  {f.label}: tokens/word {f.base_tokens_per_word:.4f} -> "
                f"{f.extended_tokens_per_word:.4f} ({f.change:+.2%}, ±{self.tolerance:.0%}) {mark}"
            )
        return out


def compare_fertility(
    base_rows: Sequence[FertilityRow], ext_rows: Sequence[FertilityRow], tolerance: float
) -> list[FertilityComparison]:
    out = []
    for a, b in zip(base_rows, ext_rows, strict=True):
        change = b.tokens_per_word / a.tokens_per_word - 1 if a.tokens_per_word else 0.0
        out.append(
            FertilityComparison(
                label=a.label,
                base_tokens_per_word=a.tokens_per_word,
                extended_tokens_per_word=b.tokens_per_word,
                change=change,
                within_tolerance=abs(change) <= tolerance,
            )
        )
    return out


def check_extension(
    base: str | Path,
    extended: str | Path,
    texts: Sequence[str | Path] = (),
    tolerance: float = 0.02,
    *,
    files_only: bool = False,
) -> CheckReport:
    """Run every check; ``texts`` are files in the base's languages (each file one label).

    ``files_only`` (byte-level BPE directories): read both with ``tokenizers`` alone and check
    the behaviour from the files (``fast.side_differences``) instead of loading transformers."""
    from worker.tokenizer.fast import load_fast, side_differences

    started = time.monotonic()
    load = load_fast if files_only else load_tokenizer
    base_tok = load(base, "--base")
    ext_tok = load(extended, "--extended")
    n_base, n_ext = len(base_tok), len(ext_tok)
    report = CheckReport(
        base=str(base),
        extended=str(extended),
        base_size=n_base,
        extended_size=n_ext,
        added=max(0, n_ext - n_base),
        tolerance=tolerance,
    )
    if n_ext < n_base:
        report.behaviour.append(
            f"the extension has fewer tokens ({n_ext}) than the base ({n_base})"
        )
    else:
        report.changed_base_ids = changed_base_ids(base_tok, ext_tok)
    report.unreachable = unreachable_tokens(ext_tok, n_base)
    report.behaviour.extend(
        side_differences(base, extended, base_tok, ext_tok)
        if files_only
        else behaviour_differences(base_tok, ext_tok)
    )
    if texts:
        base_rows = measure_files(base_tok, str(base), texts, n_base)
        ext_rows = measure_files(ext_tok, str(extended), texts, n_base)
        report.fertility = compare_fertility(base_rows, ext_rows, tolerance)
    report.seconds = round(time.monotonic() - started, 3)
    return report
