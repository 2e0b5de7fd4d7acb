"""worker/pretrain.py data and model options: from scratch with a trained SentencePiece tokenizer,
streaming, train/validation files, continuing an adapter, debug mode and sample limits."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tests.support.pretrain import assert_trained, events_of, output_of, run_pretrain, tiny_args
from worker import pretrain
from worker.exit_codes import EXIT_BAD_INPUT
from worker.training.arguments import DataTrainingArguments
from worker.training.data import group_blocks, read_texts, tokenizer_fingerprint
from worker.training.failures import InputError
from worker.training.tokenizer import load_sentencepiece, train_sentencepiece

TINY_CONFIG = (
    "hidden_size=64,intermediate_size=128,num_hidden_layers=2,num_attention_heads=4,"
    "num_key_value_heads=4,max_position_embeddings=256,vocab_size=600"
)
SAMPLE = "ಎಲ್ಲಾ ಮಾನವರೂ ಸ್ವತಂತ್ರರಾಗಿಯೇ ಜನಿಸಿದ್ದಾರೆ. सभी मनुष्यों को 人人生而自由 Hello there"


@pytest.mark.parametrize("model_type", ["bpe", "unigram", "char", "word"])
def test_sentencepiece_tokenizer_types(
    model_type: str, tiny_assets: dict[str, Path], tmp_path: Path
) -> None:
    """Each --model_type trains on the data and gives an HF tokenizer that round-trips."""
    data_args = DataTrainingArguments(dataset_dir=str(tiny_assets["corpus"]))
    sp_dir = train_sentencepiece(data_args, model_type, tmp_path / "sp", 600)
    tok = load_sentencepiece(sp_dir, model_type)
    assert len(tok) >= 600 and tok.eos_token == "</s>" and tok.pad_token == "<pad>"
    ids = tok(SAMPLE)["input_ids"]
    assert ids and max(ids) < len(tok)
    if model_type != "word":  # a word model maps unseen words to <unk>
        assert tok.decode(ids, skip_special_tokens=True).strip() == SAMPLE
    tok.save_pretrained(str(tmp_path / "hf"))
    from transformers import AutoTokenizer

    assert AutoTokenizer.from_pretrained(str(tmp_path / "hf"))(SAMPLE)["input_ids"] == ids


def test_from_scratch_streaming_with_files(tiny_assets: dict[str, Path], tmp_path: Path) -> None:
    """No model, no tokenizer: a BPE SentencePiece tokenizer and a Llama from config_overrides;
    --train_file/--validation_file, streamed (needs --max_steps)."""
    corpus = tiny_assets["corpus"]
    train_file = tmp_path / "train.jsonl"
    train_file.write_text((corpus / "chatterbot_english.jsonl").read_text(encoding="utf-8"))
    valid_file = tmp_path / "valid.txt"
    valid_file.write_text((corpus / "udhr_en_Latn.txt").read_text(encoding="utf-8"))
    out = tmp_path / "out"
    args = tiny_args(
        tiny_assets, out, tmp_path / "cache",
        model_name_or_path=None, tokenizer_name_or_path=None, dataset_dir=None,
        model_type="bpe", config_overrides=TINY_CONFIG,
        train_file=train_file, validation_file=valid_file,
        streaming=True, max_steps=16, eval_steps=8, save_steps=8, max_eval_samples=8,
    )  # fmt: skip
    proc = run_pretrain(args)
    events = assert_trained(proc, out, finetuning_type="lora")
    start = next(e for e in events if e["kind"] == "start")
    assert start["vocab_size"] >= 600
    assert (out / "sentencepiece" / "tokenizer.model").is_file()
    assert [e["step"] for e in events if e["kind"] == "eval"] == [0, 8, 16]
    # Nothing was written to the block cache: streaming reads the files lazily.
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_streaming_needs_max_steps(tiny_assets: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    previous = signal.getsignal(signal.SIGTERM)
    try:  # in process: fails before any model or data is loaded
        code = pretrain.main(
            tiny_args(tiny_assets, out, tmp_path / "cache", streaming=True, max_steps=None)
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert code == EXIT_BAD_INPUT
    assert "--streaming needs --max_steps" in events_of(out)[-1]["reason"]


def test_continue_adapter_debug_mode_and_limits(
    lora_run: tuple[subprocess.CompletedProcess[str], Path],
    tiny_assets: dict[str, Path],
    data_cache: Path,
    tmp_path: Path,
) -> None:
    """--peft_path continues the reference adapter; --debug_mode, --max_train_samples,
    --max_eval_samples and --keep_linebreaks False shape the data."""
    _, adapter = lora_run
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in (
        "udhr_kn_Knda.txt",
        "udhr_hi_Deva.txt",
        "chatterbot_hindi.jsonl",
        "chatterbot_english.jsonl",
    ):
        shutil.copy(tiny_assets["corpus"] / name, corpus)
    out = tmp_path / "out"
    args = tiny_args(
        tiny_assets, out, data_cache,
        dataset_dir=corpus, peft_path=adapter, max_steps=10, eval_steps=10, save_steps=10,
        max_train_samples=24, max_eval_samples=4, keep_linebreaks=False, learning_rate=1e-3,
    )  # fmt: skip
    proc = run_pretrain([*args, "--debug_mode"])
    events = assert_trained(proc, out)
    text = output_of(proc)
    assert f"continuing the LoRA adapter in {adapter}" in text
    assert "train blocks: 24, eval blocks: 4" in text
    assert "DEBUG" in text  # verbose output
    # It continued the trained adapter: the first loss is the reference run's end, not a fresh start.
    reference = events_of(adapter)
    fresh_first = next(e["loss"] for e in reference if e["kind"] == "log")
    first = next(e["loss"] for e in events if e["kind"] == "log")
    assert first < fresh_first - 0.1
    config = json.loads((out / "adapter_config.json").read_text())
    assert set(config["target_modules"]) == {"q_proj", "v_proj"}


def test_text_reading_and_cache_keys(tiny_assets: dict[str, Path], tmp_path: Path) -> None:
    """keep_linebreaks, .jsonl "text", and a cache key that changes with the tokenizer."""
    from transformers import AutoTokenizer

    txt = tmp_path / "a.txt"
    txt.write_text("first line\n\nsecond line\n", encoding="utf-8")
    kept, digest = read_texts(txt, True, "--dataset_dir")
    assert kept == ["first line\n", "second line\n"]
    assert read_texts(txt, False, "--dataset_dir")[0] == ["first line", "second line"]
    jsonl = tmp_path / "b.jsonl"
    jsonl.write_text('{"text": "ಒಂದು"}\n\n{"text": "两个"}\n', encoding="utf-8")
    assert read_texts(jsonl, True, "--dataset_dir")[0] == ["ಒಂದು", "两个"]
    jsonl.write_text('{"body": "no text"}\n', encoding="utf-8")
    with pytest.raises(InputError, match='line 1 has no string "text" field'):
        read_texts(jsonl, True, "--dataset_dir")
    base = AutoTokenizer.from_pretrained(str(tiny_assets["tokenizer"]))
    extended = AutoTokenizer.from_pretrained(str(tiny_assets["tokenizer_extended"]))
    assert tokenizer_fingerprint(base) == tokenizer_fingerprint(
        AutoTokenizer.from_pretrained(str(tiny_assets["tokenizer"]))
    )
    assert tokenizer_fingerprint(base) != tokenizer_fingerprint(extended)
    assert group_blocks([[1, 2, 3], [4, 5], [6, 7, 8]], 3) == [[1, 2, 3], [4, 5, 6]]
    assert len(digest) == 64
