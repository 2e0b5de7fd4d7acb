"""Mistral's 32k SentencePiece tokenizer extended with pieces learned on Kannada, Hindi, Tamil.

The new model is trained on one half of each language's text; fertility is measured on the
other half.
"""

from __future__ import annotations

import json
from pathlib import Path

from transformers import AutoTokenizer

from worker.tokenizer.check import check_extension
from worker.tokenizer.cli import main
from worker.tokenizer.fertility import fertility
from worker.tokenizer.sp_proto import new_piece, read_model_file


def test_extension_halves_indic_tokens_per_word_and_keeps_english(
    mistral_base: Path, mistral_extended: Path, texts: dict[str, Path]
) -> None:
    report = fertility(
        [mistral_base, mistral_extended], [texts["kn"], texts["hi"], texts["ta"], texts["en"]]
    )
    print("\n" + report.table())
    rows = {(r.label, r.tokenizer): r for r in report.rows}
    base, ext = str(mistral_base), str(mistral_extended)
    for lang in ("kn", "hi", "ta"):
        before, after = rows[lang, base], rows[lang, ext]
        assert after.tokens_per_word <= 0.5 * before.tokens_per_word, (lang, before, after)
        assert after.new_token_rate > 0.3, after
        assert (
            after.byte_fallback_rate < before.byte_fallback_rate or before.byte_fallback_rate == 0
        )
    en_before, en_after = rows["en", base], rows["en", ext]
    assert abs(en_after.tokens_per_word / en_before.tokens_per_word - 1) <= 0.02


def test_checks_pass_reachable_ids_kept_config_kept(
    mistral_base: Path, mistral_extended: Path, texts: dict[str, Path], tmp_path: Path
) -> None:
    report = check_extension(mistral_base, mistral_extended, [texts["en"]])
    assert report.added > 1000, report.added
    assert report.unreachable == []
    assert report.changed_base_ids == []
    assert report.behaviour == []
    assert report.passed

    out = tmp_path / "check.json"
    code = main(["check", "--base", str(mistral_base), "--extended", str(mistral_extended),
                 "--text", str(texts["en"]), "--json", str(out)])  # fmt: skip
    assert code == 0
    saved = json.loads(out.read_text())
    assert saved["passed"] is True and saved["unreachable"] == []


def test_extension_loads_with_the_bases_bos_and_template(
    mistral_base: Path, mistral_extended: Path
) -> None:
    base = AutoTokenizer.from_pretrained(str(mistral_base))
    ext = AutoTokenizer.from_pretrained(str(mistral_extended))
    assert type(ext) is type(base)
    assert (mistral_extended / "tokenizer.model").is_file()
    assert len(ext) > len(base) == 32000
    # Mistral adds <s> (add_bos_token: true in its config): so must the extension.
    assert base("ನಮಸ್ಕಾರ")["input_ids"][0] == base.bos_token_id == 1
    assert ext("ನಮಸ್ಕಾರ")["input_ids"][0] == 1
    assert ext.add_bos_token is True and ext.add_eos_token is False
    assert ext.chat_template == base.chat_template and ext.model_max_length == 32768
    assert ext.special_tokens_map == base.special_tokens_map
    text = "ಎಲ್ಲಾ ಮಾನವರೂ ಸ್ವತಂತ್ರರಾಗಿಯೇ ಜನಿಸಿದ್ದಾರೆ"
    assert ext.decode(ext(text, add_special_tokens=False)["input_ids"]) == text
    summary = json.loads((mistral_extended / "merge_summary.json").read_text())
    assert summary["added"] == len(ext) - len(base)


def test_check_reports_a_piece_the_model_cannot_build(
    mistral_base: Path, mistral_extended: Path, tmp_path: Path
) -> None:
    """A piece whose characters the vocabulary lacks (merged without them) is unreachable."""
    broken = tmp_path / "broken"
    broken.mkdir()
    proto = read_model_file(mistral_base / "tokenizer.model", "--base")
    vocab = {p.piece for p in proto.pieces}
    piece = "▁ꯃꯤꯇꯩ"  # Meitei Mayek: none of its characters is a Mistral piece
    assert not any(c in vocab for c in piece[1:])
    proto.pieces.append(new_piece(piece, -1e5))
    (broken / "tokenizer.model").write_bytes(proto.SerializeToString())
    (broken / "tokenizer_config.json").write_text(
        (mistral_base / "tokenizer_config.json").read_text()
    )
    report = check_extension(mistral_base, broken)
    assert [t for _, t in report.unreachable] == [piece]
    assert not report.passed
    assert main(["check", "--base", str(mistral_base), "--extended", str(broken)]) == 1
