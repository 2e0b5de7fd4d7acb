"""SmolLM2's byte-level BPE extended with merges learned on half of the Chinese text."""

from __future__ import annotations

import json
from pathlib import Path

from transformers import AutoTokenizer

from worker.tokenizer.check import check_extension
from worker.tokenizer.fertility import fertility


def test_extension_cuts_chinese_tokens_per_char_and_keeps_english(
    smollm2_dir: Path, smollm2_extended: Path, texts: dict[str, Path]
) -> None:
    report = fertility([smollm2_dir, smollm2_extended], [texts["zh"], texts["en"]])
    print("\n" + report.table())
    rows = {(r.label, r.tokenizer): r for r in report.rows}
    base, ext = str(smollm2_dir), str(smollm2_extended)
    zh_before, zh_after = rows["zh", base], rows["zh", ext]
    assert zh_after.tokens_per_char <= 0.65 * zh_before.tokens_per_char, (zh_before, zh_after)
    assert zh_after.byte_fallback_rate < zh_before.byte_fallback_rate
    en_before, en_after = rows["en", base], rows["en", ext]
    assert abs(en_after.tokens_per_word / en_before.tokens_per_word - 1) <= 0.02


def test_every_new_token_is_built_by_merges_of_tokens(smollm2_extended: Path) -> None:
    spec = json.loads((smollm2_extended / "tokenizer.json").read_text(encoding="utf-8"))
    vocab: dict[str, int] = spec["model"]["vocab"]
    merges = spec["model"]["merges"]
    new = merges[len(merges) - (len(vocab) - 49152) :]
    assert len(new) == len(vocab) - 49152 > 1000
    for pair in new:
        a, b = pair if isinstance(pair, list) else pair.split(" ")
        # Both parts are tokens made before the one they build.
        assert vocab[a] < vocab[a + b] and vocab[b] < vocab[a + b], (a, b)


def test_checks_pass_and_the_bases_behaviour_is_kept(
    smollm2_dir: Path, smollm2_extended: Path, texts: dict[str, Path]
) -> None:
    report = check_extension(smollm2_dir, smollm2_extended, [texts["en"]])
    assert report.added > 1000
    assert report.unreachable == []
    assert report.changed_base_ids == []
    assert report.behaviour == []
    assert report.passed

    base = AutoTokenizer.from_pretrained(str(smollm2_dir))
    ext = AutoTokenizer.from_pretrained(str(smollm2_extended))
    assert type(ext) is type(base)
    assert ext.special_tokens_map == base.special_tokens_map
    assert ext.all_special_ids == base.all_special_ids
    assert ext.chat_template == base.chat_template
    assert ext.model_max_length == base.model_max_length
    chat = [{"role": "user", "content": "你好世界"}]
    assert ext.apply_chat_template(chat, tokenize=False) == base.apply_chat_template(
        chat, tokenize=False
    )
    text = "人人生而自由在尊严和权利上一律平等"
    ids = ext(text)["input_ids"]
    assert ext.decode(ids) == text
    assert any(i >= len(base) for i in ids)
