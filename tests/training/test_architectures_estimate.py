"""Per architecture (Llama, Mistral, Qwen2/3 with padded vocabularies, Gemma-2/3 tied), the
parameters counted from ``config.json`` equal what ``pretrain.py``'s own ``build_model`` and
``count_parameters`` count, LoRA and full, with the extended tokenizer; and the weights' bytes
of the memory estimate equal the model's. In process, no training (the runs are
``test_architectures.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from backend.services.estimates import vocab_estimate
from backend.services.model_estimates import model_estimate
from cpt_contract.runconfig.argv import LaunchContext, pretrain_args
from cpt_contract.runconfig.schema import RunConfig
from tests.support.architectures import TIED, TINY, build_tiny
from tests.support.panel import ASSET_CACHE
from worker.training.arguments import parse_args
from worker.training.modeling import build_model, count_parameters, is_tied, load_config
from worker.training.tokenizer import load_tokenizer

ALL = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"
METHODS: dict[str, dict[str, Any]] = {
    "lora": {"trainable": ALL, "lora_rank": 4},
    "lora-head-only": {"modules_to_save": "lm_head", "lora_rank": 4},
    "full": {"finetuning_type": "full"},
}


def tiny_model(model_type: str, tiny_assets: dict[str, Path]) -> Path:
    return build_tiny(model_type, tiny_assets["tokenizer"], ASSET_CACHE / f"tiny-{model_type}")


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("model_type", list(TINY))
def test_the_estimate_equals_the_scripts_count(
    model_type: str, method: str, tiny_assets: dict[str, Path], tmp_path: Path
) -> None:
    model_dir = tiny_model(model_type, tiny_assets)
    config = RunConfig.model_validate(
        {
            "model": {"model_name_or_path": str(model_dir),
                      "tokenizer_name_or_path": str(tiny_assets["tokenizer_extended"])},
            "data": {"dataset_dir": str(tiny_assets["corpus"]), "block_size": 64},
            "method": METHODS[method],
            "launch": {"deepspeed": "none"},
        }
    )  # fmt: skip
    est = model_estimate(config, vocab_estimate(config).tokenizer_vocab)
    assert est.params is not None and not est.params.unknown_modules, est
    ctx = LaunchContext(output_dir=str(tmp_path / "out"), data_cache_dir=str(tmp_path / "c"))
    model_args, data_args, args = parse_args([*pretrain_args(config, ctx), "--use_cpu"])
    tokenizer = load_tokenizer(model_args, data_args, args)
    model, _, vocabulary = build_model(model_args, args, tokenizer, load_config(model_args))
    assert (est.params.total, est.params.trainable) == count_parameters(model)
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    assert est.memory is not None and est.memory.weights == weight_bytes
    # The extension's rows: padded rows reused first, the matrix grown only past them.
    assert vocabulary is not None and vocabulary["new_tokens"] == 384
    rows = TINY[model_type][0]
    assert vocabulary["reused_padded_rows"] == min(rows, 768) - 384
    vocab = vocab_estimate(config)
    assert (
        vocabulary["rows"]
        == max(rows, 768)
        == max(vocab.model_vocab or 0, vocab.tokenizer_vocab or 0)
    )
    assert vocabulary["grown_rows"] == vocab.new_rows
    assert vocabulary["reused_padded_rows"] == (vocab.reused_rows or 0)
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    assert is_tied(base) is (model_type in TIED) is vocabulary["tied"]
