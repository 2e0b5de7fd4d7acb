"""Bad input: one line naming the argument, exit code 2, nothing at the output path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from worker.tokenizer.cli import main

ROOT = Path(__file__).resolve().parents[2]


def fails_with(
    capsys: pytest.CaptureFixture[str], argv: list[str], argument: str, output: Path | None
) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"error: {argument}"), err
    if output is not None:
        assert not output.exists()
        # No temporary build left beside it either.
        assert not [p for p in output.parent.iterdir() if p.name.startswith(f".{output.name}.")]
    return err


@pytest.fixture
def latin1_file(tmp_path: Path, texts: dict[str, Path]) -> Path:
    """Real text saved in the wrong encoding (Latin-1, as an old editor would)."""
    path = tmp_path / "fr.txt"
    path.write_bytes("Tous les êtres humains naissent libres et égaux.\n".encode("latin-1"))
    return path


def test_train_rejects_non_utf8(
    capsys: pytest.CaptureFixture[str], latin1_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    err = fails_with(capsys, ["train", "--input", str(latin1_file), "--vocab_size", "100",
                              "--output", str(out)], "--input", out)  # fmt: skip
    assert "not UTF-8" in err and "fr.txt" in err


def test_train_rejects_an_empty_corpus(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    empty = tmp_path / "corpus"
    empty.mkdir()
    (empty / "a.txt").write_text("\n  \n\n")
    (empty / "b.jsonl").write_text("")
    out = tmp_path / "out"
    err = fails_with(capsys, ["train", "--input", str(empty), "--vocab_size", "100",
                              "--output", str(out)], "--input", out)  # fmt: skip
    assert "no text" in err


def test_train_rejects_a_vocab_the_corpus_cannot_fill(
    capsys: pytest.CaptureFixture[str], texts: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    err = fails_with(capsys, ["train", "--input", str(texts["kn_train"]), "--vocab_size", "50000",
                              "--output", str(out)], "--vocab_size", out)  # fmt: skip
    assert "at most" in err
    err = fails_with(capsys, ["train", "--input", str(texts["kn_train"]), "--vocab_size", "20",
                              "--output", str(out)], "--vocab_size", out)  # fmt: skip
    assert "characters" in err


def test_outputs_that_exist_are_left_alone(
    capsys: pytest.CaptureFixture[str], texts: dict[str, Path], mistral_base: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    for argv in (
        ["train", "--input", str(texts["kn_train"]), "--vocab_size", "300", "--output", str(out)],
        ["merge", "--base", str(mistral_base), "--input", str(texts["kn_train"]),
         "--output", str(out)],
    ):  # fmt: skip
        code = main(argv)
        err = capsys.readouterr().err.strip()
        assert code == 2 and err.startswith("error: --output") and "already exists" in err
        assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]


def test_merge_rejects_a_base_of_another_kind(
    capsys: pytest.CaptureFixture[str],
    mistral_base: Path,
    texts: dict[str, Path],
    tmp_path: Path,
) -> None:
    # Mistral's tokenizer.json without its tokenizer.model: a Metaspace BPE, not byte-level.
    converted = tmp_path / "converted"
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(str(mistral_base)).save_pretrained(str(converted))
    assert not (converted / "tokenizer.model").exists()
    out = tmp_path / "out"
    argv = ["merge", "--base", str(converted), "--input", str(texts["kn_train"]),
            "--output", str(out)]  # fmt: skip
    err = fails_with(capsys, argv, "--base", out)
    assert "neither a SentencePiece nor a byte-level BPE" in err
    # A model directory without any tokenizer file.
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.json").write_text(json.dumps({"model_type": "llama"}))
    argv[2] = str(bare)
    fails_with(capsys, argv, "--base", out)


def test_merge_rejects_bad_text_and_wrong_sources(
    capsys: pytest.CaptureFixture[str],
    smollm2_dir: Path,
    mistral_base: Path,
    indic_model: Path,
    latin1_file: Path,
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    fails_with(capsys, ["merge", "--base", str(smollm2_dir), "--input", str(latin1_file),
                        "--output", str(out)], "--input", out)  # fmt: skip
    fails_with(capsys, ["merge", "--base", str(smollm2_dir), "--add", str(indic_model),
                        "--output", str(out)], "--add", out)  # fmt: skip
    fails_with(capsys, ["merge", "--base", str(mistral_base), "--output", str(out)], "--add", out)
    fails_with(capsys, ["merge", "--base", str(mistral_base), "--add", str(latin1_file),
                        "--output", str(out)], "--add", out)  # fmt: skip


def test_fertility_rejects_non_utf8(
    capsys: pytest.CaptureFixture[str], mistral_base: Path, latin1_file: Path
) -> None:
    fails_with(capsys, ["fertility", "--tokenizer", str(mistral_base), "--text", str(latin1_file)],
               "--text", None)  # fmt: skip


def test_the_process_exits_2_with_one_line(latin1_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "worker.tokenizer", "train", "--input", str(latin1_file),
         "--vocab_size", "100", "--output", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().startswith("error: --input") and len(proc.stderr.splitlines()) == 1
    assert not out.exists()
