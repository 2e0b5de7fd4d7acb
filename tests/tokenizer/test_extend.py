"""``extend`` (what the panel's tokenizer job runs) on a SentencePiece base: Mistral's 32k
tokenizer extended with pieces trained on Tamil, measured on held-out Tamil and English."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.panel import ROOT


def test_extend_mistral_with_tamil(
    mistral_base: Path, texts: dict[str, Path], tmp_path: Path
) -> None:
    out, result_path = tmp_path / "ext", tmp_path / "result.json"
    argv = [sys.executable, "-m", "worker.tokenizer", "extend", "--base", str(mistral_base)]
    argv += [
        "--input",
        str(texts["ta_train"]),
        "--vocab_size",
        "800",
        "--character_coverage",
        "1.0",
    ]
    argv += ["--text", str(texts["ta"]), str(texts["en"]), "--output", str(out)]
    argv += ["--json", str(result_path)]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(result_path.read_text())
    print(
        {
            r["label"]: (r["base"]["tokens_per_word"], r["extended"]["tokens_per_word"])
            for r in result["fertility"]
        }
    )
    assert result["family"].startswith("sentencepiece") and result["base_vocab"] == 32000
    assert result["added"] > 100 and result["vocab_size"] == 32000 + result["added"]
    assert result["unreachable_count"] == 0 and result["base_ids_unchanged"]
    rows = {r["label"]: r for r in result["fertility"]}
    ta, en = rows["ta"], rows["en"]
    assert ta["extended"]["tokens_per_word"] < 0.5 * ta["base"]["tokens_per_word"]
    assert abs(en["extended"]["tokens_per_word"] / en["base"]["tokens_per_word"] - 1) <= 0.02
    assert {e["label"] for e in result["examples"]} == {"ta", "en"}
    assert (out / "tokenizer.model").is_file() and result["output"] == str(out)
