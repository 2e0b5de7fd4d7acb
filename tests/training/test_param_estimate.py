"""Parameters counted from ``config.json`` (no weights) equal what ``pretrain.py`` counts for its
``start`` event: the panel's argv parsed by the script's own parser, the model built by its own
``build_model`` (vocabulary resize, LoRA with ``modules_to_save``) and ``count_parameters``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from backend.services.estimates import vocab_estimate
from backend.services.model_estimates import model_estimate
from cpt_contract.runconfig.argv import LaunchContext, pretrain_args
from cpt_contract.runconfig.schema import RunConfig
from tests.support.panel import ASSET_CACHE
from worker import demo_assets
from worker.training.arguments import parse_args
from worker.training.modeling import build_model, count_parameters, load_config
from worker.training.tokenizer import load_tokenizer

ALL = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"
CASES: dict[str, dict[str, Any]] = {
    "tiny-extended-lora-save": {"model": "tiny", "tokenizer": True, "method": {}},
    "tiny-extended-full": {"model": "tiny", "tokenizer": True,
                           "method": {"finetuning_type": "full"}},
    "tiny-lora-all-empty-save": {"model": "tiny", "tokenizer": False,
                                 "method": {"trainable": ALL, "modules_to_save": None,
                                            "lora_rank": 4}},
    "tiny-lora-head-only": {"model": "tiny", "tokenizer": True,
                            "method": {"modules_to_save": "lm_head", "lora_rank": 16}},
    "smollm2-tied-lora-save": {"model": "smollm2", "tokenizer": False,
                               "method": {"trainable": ALL}},
}  # fmt: skip


def _real_counts(config: RunConfig, tmp_path: Path) -> tuple[int, int]:
    ctx = LaunchContext(output_dir=str(tmp_path / "out"), data_cache_dir=str(tmp_path / "c"))
    model_args, data_args, args = parse_args([*pretrain_args(config, ctx), "--use_cpu"])
    tokenizer = load_tokenizer(model_args, data_args, args)
    model, _, _ = build_model(model_args, args, tokenizer, load_config(model_args))
    return count_parameters(model)


@pytest.mark.parametrize("case", list(CASES))
def test_params_from_config_equal_the_scripts_count(
    case: str, tiny_assets: dict[str, Path], tmp_path: Path
) -> None:
    spec = CASES[case]
    model = (
        tiny_assets["model"] if spec["model"] == "tiny" else demo_assets.ensure_smollm2(ASSET_CACHE)
    )
    tokenizer = tiny_assets["tokenizer_extended"] if spec["tokenizer"] else None
    config = RunConfig.model_validate(
        {
            "model": {"model_name_or_path": str(model),
                      "tokenizer_name_or_path": str(tokenizer) if tokenizer else None},
            "data": {"dataset_dir": str(tiny_assets["corpus"]), "block_size": 64},
            "method": spec["method"],
            "launch": {"deepspeed": "none"},
        }
    )  # fmt: skip
    est = model_estimate(config, vocab_estimate(config).tokenizer_vocab)
    assert est.params is not None and not est.params.unknown_modules
    assert (est.params.total, est.params.trainable) == _real_counts(config, tmp_path)
