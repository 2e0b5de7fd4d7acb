"""Each architecture the panel trains, as a tiny model built locally (``tests/support/
architectures.py``: Mistral, Qwen2 and Qwen3 with padded vocabularies, Gemma-2 and Gemma-3 tied
and soft-capped; the Llama rows are the rest of this tier's), through the real script under
torchrun: LoRA with the extended tokenizer (new rows reused from the padding or grown, stated in
the start event; a tied model stays tied), a resume, a merge whose reloaded model equals the
adapter on its base and generates; full weights under DeepSpeed ZeRO-2 with the same tokenizer.
The start events' parameter counts equal the launch form's estimate.

Small on purpose (2 shared cores): 4 + 2 LoRA steps and 2 full steps per architecture."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from backend.services.estimates import vocab_estimate
from backend.services.model_estimates import model_estimate
from cpt_contract.runconfig.schema import RunConfig
from tests.support.architectures import TIED, TINY, build_tiny
from tests.support.panel import ASSET_CACHE
from tests.support.pretrain import DS_CONFIGS, events_of, output_of, run_pretrain, tiny_args
from worker import generate, merge_lora

pytestmark = pytest.mark.slow

ARCHS = [t for t in TINY if t != "llama"]
PROMPT = "ಎಲ್ಲಾ ಮಾನವರೂ ಸ್ವತಂತ್ರರಾಗಿಯೇ ಜನಿಸಿದ್ದಾರೆ। 人人生而自由"


def _estimate(model: Path, tiny_assets: dict[str, Path], method: dict[str, Any]) -> Any:
    config = RunConfig.model_validate(
        {
            "model": {"model_name_or_path": str(model),
                      "tokenizer_name_or_path": str(tiny_assets["tokenizer_extended"])},
            "data": {"dataset_dir": str(tiny_assets["corpus"]), "block_size": 64},
            "method": method,
            "launch": {"deepspeed": "none"},
        }
    )  # fmt: skip
    return model_estimate(config, vocab_estimate(config).tokenizer_vocab).params


def _starts(out: Path) -> list[dict[str, Any]]:
    return [e for e in events_of(out) if e["kind"] == "start"]


def _ends(out: Path) -> list[dict[str, Any]]:
    return [e for e in events_of(out) if e["kind"] == "end"]


@pytest.mark.parametrize("model_type", ARCHS)
def test_lora_extends_resumes_merges_and_generates(
    model_type: str, tiny_assets: dict[str, Path], data_cache: Path, tmp_path: Path
) -> None:
    model = build_tiny(model_type, tiny_assets["tokenizer"], ASSET_CACHE / f"tiny-{model_type}")
    rows = TINY[model_type][0]
    out = tmp_path / "out"
    flags: dict[str, Any] = dict(
        model_name_or_path=model, max_steps=4, save_steps=2, eval_steps=4, learning_rate=5e-3
    )
    proc = run_pretrain(tiny_args(tiny_assets, out, data_cache, **flags), nproc=1)
    assert proc.returncode == 0, output_of(proc)[-5000:]
    (start,) = _starts(out)
    assert _ends(out)[-1]["status"] == "succeeded"
    est = _estimate(model, tiny_assets, {})
    assert (start["total_params"], start["trainable_params"]) == (est.total, est.trainable)
    vocab = start["vocabulary"]
    assert vocab["base_tokenizer"] == 384 and vocab["tokenizer"] == 768
    assert vocab["reused_padded_rows"] == min(rows, 768) - 384
    assert vocab["rows"] == start["vocab_size"] == max(rows, 768)
    assert vocab["tied"] is (model_type in TIED)
    if vocab["reused_padded_rows"]:
        assert (
            f"{vocab['reused_padded_rows']} padded rows of the {rows}-row matrix reused"
            in (vocab["message"])
        )
    assert vocab["message"] in output_of(proc)
    losses = [e["loss"] for e in events_of(out) if e["kind"] == "log"]
    assert losses[-1] < losses[0], losses

    # Resume from the last checkpoint to step 6.
    flags.update(max_steps=6, resume_from_checkpoint="last")
    proc = run_pretrain(tiny_args(tiny_assets, out, data_cache, **flags), nproc=1)
    assert proc.returncode == 0, output_of(proc)[-5000:]
    resumed = _starts(out)[-1]
    assert resumed["resumed_from"].endswith("checkpoint-4") and resumed["step"] == 4
    assert _ends(out)[-1]["status"] == "succeeded"

    # Merge, reload: the same logits as the adapter on its base; a tied model stays tied.
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from worker.training.hf_tokenizer import auto_tokenizer

    merged_dir = tmp_path / "merged"
    argv = ["--base", str(model), "--adapter", str(out), "--output", str(merged_dir)]
    assert merge_lora.main(argv) == 0
    merged = AutoModelForCausalLM.from_pretrained(str(merged_dir), dtype=torch.float32).eval()
    tok = auto_tokenizer(str(merged_dir))
    assert len(tok) == 768 and merged.get_input_embeddings().weight.shape[0] == vocab["rows"]
    head, emb = merged.get_output_embeddings().weight, merged.get_input_embeddings().weight
    assert (head is emb) is (model_type in TIED)
    base = AutoModelForCausalLM.from_pretrained(str(model), dtype=torch.float32)
    if vocab["rows"] != rows:
        base.resize_token_embeddings(vocab["rows"], mean_resizing=False)
    reference = PeftModel.from_pretrained(base, str(out)).eval()
    ids = tok([PROMPT], return_tensors="pt").input_ids
    assert int(ids.max()) >= 384  # the prompt uses new tokens
    with torch.no_grad():
        got, want = merged(ids).logits, reference(ids).logits
    assert torch.allclose(got, want, atol=1e-4), (got - want).abs().max()
    result = tmp_path / "generated.json"
    argv = ["--checkpoint", str(merged_dir), f"--prompt={PROMPT}", "--max_new_tokens", "8"]
    assert generate.main([*argv, "--json", str(result)]) == 0
    assert json.loads(result.read_text())["new_tokens"] >= 1


@pytest.mark.parametrize("model_type", ARCHS)
def test_full_weights_under_deepspeed_with_the_extended_tokenizer(
    model_type: str, tiny_assets: dict[str, Path], data_cache: Path, tmp_path: Path
) -> None:
    model = build_tiny(model_type, tiny_assets["tokenizer"], ASSET_CACHE / f"tiny-{model_type}")
    out = tmp_path / "out"
    args = tiny_args(
        tiny_assets, out, data_cache, model_name_or_path=model, finetuning_type="full",
        deepspeed=DS_CONFIGS / "ds_zero2_no_offload.json", max_steps=2, save_steps=2,
        eval_steps=2, learning_rate=1e-3,
    )  # fmt: skip
    proc = run_pretrain(args, nproc=1)
    assert proc.returncode == 0, output_of(proc)[-5000:]
    (start,) = _starts(out)
    assert _ends(out)[-1]["status"] == "succeeded"
    est = _estimate(model, tiny_assets, {"finetuning_type": "full"})
    assert (start["total_params"], start["trainable_params"]) == (est.total, est.trainable)
    from transformers import AutoModelForCausalLM

    saved = AutoModelForCausalLM.from_pretrained(str(out), dtype=torch.float32)
    assert saved.get_input_embeddings().weight.shape[0] == start["vocabulary"]["rows"]
    tied = saved.get_output_embeddings().weight is saved.get_input_embeddings().weight
    assert tied is (model_type in TIED) is start["vocabulary"]["tied"]
