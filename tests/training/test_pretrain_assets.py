"""worker/demo_assets.py: the tiny-demo assets, built hub-free, idempotent, safe to build twice at once."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from tests.support.panel import ROOT
from tests.support.pretrain import train_env
from worker import demo_assets


def test_concurrent_builds_then_cached(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    code = "import sys; from pathlib import Path; from worker import demo_assets; demo_assets.ensure_demo_assets(Path(sys.argv[1]))"
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(demo)], cwd=ROOT, env=train_env())
        for _ in range(2)
    ]
    assert [p.wait(timeout=240) for p in procs] == [0, 0]
    # One finished directory, no temporary or stale leftovers beside it.
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["demo"]
    assert (
        json.loads((demo / demo_assets.MARKER).read_text())["version"] == demo_assets.DEMO_VERSION
    )

    t0 = time.perf_counter()
    paths = demo_assets.ensure_demo_assets(demo)
    assert time.perf_counter() - t0 < 0.5  # a marker read, no rebuild
    assert set(paths) == {"root", "model", "tokenizer", "tokenizer_extended", "corpus"}


def test_assets_content(tiny_assets: dict[str, Path]) -> None:
    from transformers import AutoConfig, AutoTokenizer

    base = AutoTokenizer.from_pretrained(str(tiny_assets["tokenizer"]))
    extended = AutoTokenizer.from_pretrained(str(tiny_assets["tokenizer_extended"]))
    config = AutoConfig.from_pretrained(str(tiny_assets["model"]))
    assert config.vocab_size == len(base) == 384 and len(extended) == 768
    assert config.hidden_size == 64 and config.num_hidden_layers == 2
    for tok in (base, extended):
        assert (tok.bos_token, tok.eos_token, tok.pad_token) == ("<s>", "</s>", "<pad>")
    # Extension keeps every old id and shortens Indic/Chinese text.
    old = base.get_vocab()
    assert all(extended.get_vocab()[t] == i for t, i in old.items())
    kannada = (tiny_assets["corpus"] / "udhr_kn_Knda.txt").read_text(encoding="utf-8")
    assert len(extended(kannada)["input_ids"]) < 0.7 * len(base(kannada)["input_ids"])
    assert extended.decode(extended(kannada)["input_ids"], skip_special_tokens=True) == kannada

    files = sorted(p.name for p in tiny_assets["corpus"].iterdir())
    assert {
        "udhr_kn_Knda.txt",
        "udhr_hi_Deva.txt",
        "udhr_ta_Taml.txt",
        "udhr_zh_Hans.txt",
        "udhr_en_Latn.txt",
    } <= set(files)
    jsonl = [f for f in files if f.endswith(".jsonl")]
    assert "chatterbot_hindi.jsonl" in jsonl and "chatterbot_chinese.jsonl" in jsonl
    first = json.loads(
        (tiny_assets["corpus"] / jsonl[0]).read_text(encoding="utf-8").splitlines()[0]
    )
    assert isinstance(first["text"], str) and first["text"]
    # Enough text for ~40 steps of 4 x 64-token blocks plus a validation split.
    total = sum(
        len(base((tiny_assets["corpus"] / f).read_text(encoding="utf-8"))["input_ids"])
        for f in files
    )
    assert total > 1.5 * 40 * 4 * 64
