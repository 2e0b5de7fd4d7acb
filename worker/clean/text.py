"""Words, normalised text and the Gopher/C4 quality heuristics (pure functions of the text).

Words are runs of non-space characters, except that each CJK, kana, Hangul syllable or Thai
character is a word of its own (these scripts do not put spaces between words), so the word
thresholds mean something for Chinese too. The benchmark gives datatrove this same splitter.
"""

from __future__ import annotations

import unicodedata
from collections import Counter

import regex

from cpt_contract.clean import QualityStep

_WORD = regex.compile(
    r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}\p{Thai}]|[^\s\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}\p{Thai}]+"
)
_PUNCT = regex.compile(r"[\p{P}\p{S}]+")
_SPACE = regex.compile(r"\s+")
_LINES = regex.compile(r"\n+")
#: Characters a line may end with to count as a sentence end (C4's rule, Unicode-wide).
TERMINAL = frozenset(
    ".!?\u3002\uff01\uff1f\u2026\"'\u201d\u2019\u300d\u300f)\u00bb\u0964\u0965\u061f\u06d4"
)


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def normalise(text: str) -> str:
    """NFKC, lower case, punctuation and symbols dropped, whitespace runs as one space."""
    text = unicodedata.normalize("NFKC", text).lower()
    return _SPACE.sub(" ", _PUNCT.sub(" ", text)).strip()


_SYMBOLS_ONLY = regex.compile(r"[\p{P}\p{S}]+")
_LETTER = regex.compile(r"\p{L}")


def _is_symbol_word(word: str) -> bool:
    return _SYMBOLS_ONLY.fullmatch(word) is not None


def _top_ngram_chars(ws: list[str], n: int) -> int:
    """Characters covered by the most frequent n-gram, only when it occurs more than once.
    (datatrove counts a short document's single n-gram too, dropping every document of under
    ~2 / ratio words whatever its text; bench/clean.py measures what that changes.)"""
    if len(ws) < n:
        return 0
    # Tuples, not joined strings: the same n-grams, hashed without building a string each.
    gram, count = Counter(zip(*(ws[i:] for i in range(n)), strict=False)).most_common(1)[0]
    return (sum(map(len, gram)) + n - 1) * count if count > 1 else 0


def _duplicate_ngram_chars(ws: list[str], n: int) -> int:
    """Characters of n-grams seen before (Gopher; a repeat skips its n words, as datatrove)."""
    seen: set[tuple[str, ...]] = set()
    repeated, i = 0, 0
    while i < len(ws) - n + 1:
        gram = tuple(ws[i : i + n])
        if gram in seen:
            repeated += sum(map(len, gram))
            i += n
        else:
            seen.add(gram)
            i += 1
    return repeated


def quality_problem(text: str, q: QualityStep) -> str | None:
    """Why ``text`` fails the heuristics (``"min_words: 3 < 5"``), or None when it passes."""
    ws = words(text)
    n = len(ws)
    real = [w for w in ws if not _is_symbol_word(w)]
    if q.min_words is not None and len(real) < q.min_words:
        return f"min_words: {len(real)} < {q.min_words}"
    if q.max_words is not None and len(real) > q.max_words:
        return f"max_words: {len(real)} > {q.max_words}"
    if real:
        mean = sum(map(len, real)) / len(real)
        if q.min_mean_word_length is not None and mean < q.min_mean_word_length:
            return f"min_mean_word_length: {mean:.2f} < {q.min_mean_word_length}"
        if q.max_mean_word_length is not None and mean > q.max_mean_word_length:
            return f"max_mean_word_length: {mean:.2f} > {q.max_mean_word_length}"
    if n and q.max_symbol_word_ratio is not None:
        for what, count in (
            ("'#'", text.count("#")),
            ("'…'", text.count("...") + text.count("…")),
        ):
            if count / n > q.max_symbol_word_ratio:
                return f"max_symbol_word_ratio: {what} {count / n:.2f} > {q.max_symbol_word_ratio}"
    if n and q.min_alpha_word_ratio is not None:
        alpha = sum(1 for w in ws if _LETTER.search(w)) / n
        if alpha < q.min_alpha_word_ratio:
            return f"min_alpha_word_ratio: {alpha:.2f} < {q.min_alpha_word_ratio}"
    if text and q.max_digit_ratio is not None:
        digits = sum(map(str.isdigit, text)) / len(text)
        if digits > q.max_digit_ratio:
            return f"max_digit_ratio: {digits:.2f} > {q.max_digit_ratio}"
    lines = [ln for ln in _LINES.split(text) if ln.strip()]
    if lines and q.max_duplicate_line_ratio is not None:
        dup = len(lines) - len(set(lines))
        if dup / len(lines) > q.max_duplicate_line_ratio:
            ratio = dup / len(lines)
            return f"max_duplicate_line_ratio: {ratio:.2f} > {q.max_duplicate_line_ratio}"
    for gram, limit in (
        (2, q.max_top_2gram_ratio),
        (3, q.max_top_3gram_ratio),
        (4, q.max_top_4gram_ratio),
    ):
        if limit is not None and text:
            share = _top_ngram_chars(ws, gram) / len(text)
            if share > limit:
                return f"max_top_{gram}gram_ratio: {share:.2f} > {limit}"
    if q.max_duplicate_5gram_ratio is not None and text:
        share = _duplicate_ngram_chars(ws, 5) / len(text)
        if share > q.max_duplicate_5gram_ratio:
            return f"max_duplicate_5gram_ratio: {share:.2f} > {q.max_duplicate_5gram_ratio}"
    if lines and q.min_punctuated_line_ratio is not None:
        ended = sum(1 for ln in lines if ln.rstrip()[-1:] in TERMINAL) / len(lines)
        if ended < q.min_punctuated_line_ratio:
            return f"min_punctuated_line_ratio: {ended:.2f} < {q.min_punctuated_line_ratio}"
    return None
