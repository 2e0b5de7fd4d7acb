"""New-token embeddings: ``--new_embeddings_init subtoken_mean|mean_resizing|random``.

On SmolLM2-135M with its tokenizer extended for Chinese, rows set to the mean of the base
tokenizer's pieces (FVT/EEVE) start with a lower held-out Chinese loss per character than
transformers' mean-resizing, before any training.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from worker.training.arguments import parse_args
from worker.training.embeddings import resize_embeddings, subtoken_ids
from worker.training.modeling import build_model, load_config

BLOCK = 128
BLOCKS = 3


def loss_per_char(model: Any, tokenizer: Any, text: str) -> float:
    """Sum of token NLL over the first BLOCKS blocks of ``text``, per non-space character."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"][: BLOCK * BLOCKS]
    assert len(ids) == BLOCK * BLOCKS
    chars = sum(
        len("".join(tokenizer.decode(ids[i : i + BLOCK]).split()))
        for i in range(0, len(ids), BLOCK)
    )
    # Each block predicts its tokens 2..BLOCK; count the characters those tokens cover.
    first = [ids[i] for i in range(0, len(ids), BLOCK)]
    chars -= sum(len("".join(tokenizer.decode([t]).split())) for t in first)
    batch = torch.tensor(ids).view(BLOCKS, BLOCK)
    with torch.no_grad():
        loss = model(input_ids=batch, labels=batch).loss.item()
    return loss * BLOCKS * (BLOCK - 1) / chars


def test_subtoken_mean_starts_below_mean_resizing(
    smollm2_dir: Path, smollm2_extended: Path, texts: dict[str, Path]
) -> None:
    torch.set_num_threads(1)
    base_tok = AutoTokenizer.from_pretrained(str(smollm2_dir))
    ext_tok = AutoTokenizer.from_pretrained(str(smollm2_extended))
    held_out = texts["zh"].read_text(encoding="utf-8")
    results = {}
    for method in ("mean_resizing", "subtoken_mean"):
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_pretrained(str(smollm2_dir), dtype=torch.float32).eval()
        done = resize_embeddings(model, ext_tok, len(ext_tok), method, base_tok)
        assert done["method"] == method and done["rows"] == len(ext_tok) - len(base_tok)
        # SmolLM2 ties its head to the input embeddings; it stays tied.
        assert model.lm_head.weight is model.get_input_embeddings().weight
        if method == "subtoken_mean":
            assert done["from_pieces"] == done["rows"]
            new_id = len(ext_tok) - 1
            pieces = subtoken_ids(ext_tok, base_tok, [new_id], len(base_tok))[new_id]
            emb = model.get_input_embeddings().weight
            assert len(pieces) >= 2 and torch.allclose(emb[new_id], emb[pieces].mean(0))
        results[method] = loss_per_char(model, ext_tok, held_out)
    print(
        f"\nstep-0 held-out Chinese loss per character (SmolLM2-135M, +{done['rows']} tokens): "
        f"mean_resizing {results['mean_resizing']:.3f}, subtoken_mean {results['subtoken_mean']:.3f}"
    )
    assert results["subtoken_mean"] < results["mean_resizing"], results


def _args(tmp_path: Path, model: Path, tokenizer: Path, method: str | None) -> Any:
    argv = [
        "--model_name_or_path", str(model), "--tokenizer_name_or_path", str(tokenizer),
        "--dataset_dir", str(tmp_path), "--output_dir", str(tmp_path / "out"),
        "--finetuning_type", "full", "--use_cpu", "--report_to", "none",
    ]  # fmt: skip
    if method:
        argv += ["--new_embeddings_init", method]
    return parse_args(argv)


@pytest.mark.parametrize("method", ["subtoken_mean", "random", "mean_resizing"])
def test_pretrain_flag_sets_the_new_rows(
    method: str, tiny_assets: dict[str, Path], tmp_path: Path
) -> None:
    """The tiny demo Llama (untied head) with the demo's extended tokenizer."""
    model_args, _, args = _args(
        tmp_path, tiny_assets["model"], tiny_assets["tokenizer_extended"], method
    )
    base_tok = AutoTokenizer.from_pretrained(str(tiny_assets["tokenizer"]))
    ext_tok = AutoTokenizer.from_pretrained(str(tiny_assets["tokenizer_extended"]))
    torch.manual_seed(0)
    model, old_vocab, _ = build_model(model_args, args, ext_tok, load_config(model_args))
    assert old_vocab == len(base_tok) < len(ext_tok)
    emb = model.get_input_embeddings().weight
    head = model.get_output_embeddings().weight
    assert emb.shape[0] == head.shape[0] == len(ext_tok) and head is not emb
    new_ids = list(range(old_vocab, len(ext_tok)))
    if method == "subtoken_mean":
        pieces = subtoken_ids(ext_tok, base_tok, new_ids, old_vocab)
        assert all(len(p) >= 2 for p in pieces.values())
        for i in new_ids[:: max(1, len(new_ids) // 20)]:
            assert torch.allclose(emb[i], emb[pieces[i]].mean(0))
            assert torch.allclose(head[i], head[pieces[i]].mean(0))
    elif method == "random":
        std = float(emb[old_vocab:].detach().std())
        assert 0.018 < std < 0.022  # initializer_range 0.02
        assert 0.018 < float(head[old_vocab:].detach().std()) < 0.022
    else:
        # transformers' rows: drawn around the old rows' mean, all alike in distribution.
        mean = emb[:old_vocab].mean(0)
        assert float((emb[old_vocab:].mean(0) - mean).abs().max().detach()) < 0.05


def test_default_is_subtoken_mean_and_a_model_without_tokenizer_falls_back(
    tiny_assets: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bare = tmp_path / "model-only"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_assets["model"] / name, bare / name)
    model_args, _, args = _args(tmp_path, bare, tiny_assets["tokenizer_extended"], None)
    assert model_args.new_embeddings_init == "subtoken_mean"
    ext_tok = AutoTokenizer.from_pretrained(str(tiny_assets["tokenizer_extended"]))
    with caplog.at_level(logging.WARNING, logger="pretrain"):
        build_model(model_args, args, ext_tok, load_config(model_args))
    assert "using mean_resizing" in caplog.text
    with pytest.raises(SystemExit):
        _args(tmp_path, bare, tiny_assets["tokenizer_extended"], "zeros")
