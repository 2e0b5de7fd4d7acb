"""``extend`` on a byte-level BPE base (SmolLM2) as the tokenizer job runs it: the fast path
(words counted per distinct segment, tokenizers' BpeTrainer as the merge loop, no
transformers in the process) keeps every guarantee of the extension."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tokenizers import Regex, Tokenizer, pre_tokenizers
from transformers import AutoTokenizer

from tests.support.panel import ROOT
from worker.tokenizer.bpe_count import pretokenized_counts, segments_agree, word_counts


def _lines(*paths: Path) -> list[str]:
    return [
        s
        for p in paths
        for line in p.read_text(encoding="utf-8").splitlines()
        if (s := line.strip())
    ]


def test_word_counts_equal_whole_line_pretokenization(
    smollm2_dir: Path, texts: dict[str, Path]
) -> None:
    base = Tokenizer.from_file(str(smollm2_dir / "tokenizer.json"))
    lines = _lines(texts["zh_train"], texts["en"], texts["hi"])
    # Runs of spaces, tabs and no-break spaces: the whole-line pre-tokenizer groups them.
    lines += ["a  b   c\td \u00a0e", "x,  'll  42   1234  y", "tail   ", "  lead"]
    lines = [line.strip() for line in lines]
    assert segments_agree(base.pre_tokenizer, lines)  # the fast path is taken
    assert word_counts(base, lines) == pretokenized_counts(base, lines)


def test_a_pre_tokenizer_that_joins_across_spaces_falls_back_to_whole_lines(
    smollm2_dir: Path, texts: dict[str, Path]
) -> None:
    base = Tokenizer.from_file(str(smollm2_dir / "tokenizer.json"))
    # Pairs of words (across the space) as one pre-token: segments would split them.
    base.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(r"\S+ \S+"), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    lines = _lines(texts["en"])
    assert not segments_agree(base.pre_tokenizer, lines[::10])  # the sample tells
    counts = word_counts(base, lines)
    assert counts == pretokenized_counts(base, lines)
    assert any("Ġ" in word for word in counts)  # pairs really were kept whole


def test_extend_smollm2_with_chinese_as_the_job_runs_it(
    smollm2_dir: Path, texts: dict[str, Path], tmp_path: Path
) -> None:
    out, result_path = tmp_path / "ext", tmp_path / "result.json"
    argv = [sys.executable, "-X", "importtime", "-m", "worker.tokenizer", "extend"]
    argv += [f"--base={smollm2_dir}", "--input", str(texts["zh_train"]), "--max_new", "1500"]
    argv += ["--text", str(texts["zh"]), str(texts["en"]), "--output", str(out)]
    argv += ["--json", str(result_path)]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # The job's process never pays for importing transformers.
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert "transformers" not in imported and "tokenizers" in imported
    result = json.loads(result_path.read_text(encoding="utf-8"))
    assert result["family"] == "byte-level-bpe" and result["base_vocab"] == 49152
    assert result["added"] == 1500 and result["vocab_size"] == 49152 + 1500
    assert result["unreachable_count"] == 0 and result["base_ids_unchanged"]
    assert result["behaviour_differences"] == []
    rows = {r["label"]: r for r in result["fertility"]}
    zh, en = rows["zh"], rows["en"]
    assert zh["extended"]["tokens_per_char"] < 0.7 * zh["base"]["tokens_per_char"]
    assert abs(en["extended"]["tokens_per_word"] / en["base"]["tokens_per_word"] - 1) <= 0.02

    # transformers reads the extension as it reads the base, and encodes as the job measured.
    base_tok = AutoTokenizer.from_pretrained(str(smollm2_dir))
    ext_tok = AutoTokenizer.from_pretrained(str(out))
    assert type(ext_tok) is type(base_tok) and len(ext_tok) == 49152 + 1500
    assert ext_tok.convert_ids_to_tokens(list(range(49152))) == base_tok.convert_ids_to_tokens(
        list(range(49152))
    )
    example = result["examples"][0]
    assert (
        ext_tok(example["text"], add_special_tokens=False)["input_ids"] == example["extended_ids"]
    )
    for token_id in range(49152, len(ext_tok)):
        text = ext_tok.decode([token_id])
        if "\ufffd" not in text:  # whole characters: encoding the text gives the token back
            assert ext_tok(text, add_special_tokens=False)["input_ids"] == [token_id], text
