"""The command line end to end: train, then measure with the trained model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from worker.tokenizer.cli import main


def test_train_then_fertility_json(
    capsys: pytest.CaptureFixture[str], texts: dict[str, Path], mistral_base: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ta-unigram"
    assert main(["train", "--input", str(texts["ta_train"]), "--model_type", "unigram",
                 "--vocab_size", "400", "--output", str(out)]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "train:" in printed and "400 pieces" in printed
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["pieces"] == 400 and summary["model_type"] == "unigram"
    assert sorted(p.name for p in out.iterdir()) == ["tokenizer.model", "train_summary.json"]

    report = tmp_path / "fertility.json"
    assert main(["fertility", "--tokenizer", str(mistral_base), "--tokenizer", str(out),
                 "--text", str(texts["ta"]), str(texts["en"]), "--json", str(report)]) == 0  # fmt: skip
    table = capsys.readouterr().out
    assert "tok/word" in table and "ta" in table
    rows = json.loads(report.read_text())["rows"]
    by = {(r["label"], r["tokenizer"]): r for r in rows}
    mistral, own = by["ta", str(mistral_base)], by["ta", str(out)]
    # A 400-piece Tamil model already needs fewer tokens per Tamil word than Mistral's 32k one.
    assert own["tokens_per_word"] < 0.8 * mistral["tokens_per_word"]
    assert mistral["byte_fallback_rate"] > 0.05 and own["unknown_rate"] == 0
    # Ids of the second tokenizer overlap the first's range: "new" counts ids >= 32000 only.
    assert own["new_token_rate"] == 0
