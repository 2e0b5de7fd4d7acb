"""worker/merge_lora.py: a LoRA adapter with resized embeddings merged into its base, on CPU."""

from __future__ import annotations

import subprocess
from pathlib import Path

import torch

from tests.support.pretrain import output_of
from worker import merge_lora

# The reference LoRA run (session fixture): tiny Llama, vocabulary extended 384 → 768.


def test_merge_equals_base_plus_adapter(
    lora_run: tuple[subprocess.CompletedProcess[str], Path],
    tiny_assets: dict[str, Path],
    tmp_path: Path,
) -> None:
    from peft import PeftModel
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM, AutoTokenizer

    proc, adapter = lora_run
    assert proc.returncode == 0, output_of(proc)[-4000:]
    merged_dir = tmp_path / "merged"
    code = merge_lora.main(
        [
            "--base",
            str(tiny_assets["model"]),
            "--adapter",
            str(adapter),
            "--output",
            str(merged_dir),
        ]
    )
    assert code == 0

    # A plain HF model: no LoRA or modules_to_save keys, the extended vocabulary, its tokenizer.
    with safe_open(str(merged_dir / "model.safetensors"), framework="pt") as fh:
        keys = list(fh.keys())
    assert keys and not [
        k for k in keys if "lora_" in k or "modules_to_save" in k or "base_layer" in k
    ]
    tokenizer = AutoTokenizer.from_pretrained(str(merged_dir))
    assert len(tokenizer) == 768
    merged = AutoModelForCausalLM.from_pretrained(str(merged_dir), dtype=torch.float32).eval()
    assert merged.config.vocab_size == 768

    text = ["ಎಲ್ಲಾ ಮಾನವರೂ ಸ್ವತಂತ್ರರಾಗಿಯೇ ಜನಿಸಿದ್ದಾರೆ। सभी मनुष्य 人人生而自由 hello"]
    ids = tokenizer(text, return_tensors="pt").input_ids
    assert int(ids.max()) >= 384  # the text uses new tokens
    base = AutoModelForCausalLM.from_pretrained(str(tiny_assets["model"]), dtype=torch.float32)
    base.resize_token_embeddings(768)
    reference = PeftModel.from_pretrained(base, str(adapter)).eval()
    with torch.no_grad():
        got, want = merged(ids).logits, reference(ids).logits
        untouched = AutoModelForCausalLM.from_pretrained(str(tiny_assets["model"])).eval()
        before = untouched(ids.clamp(max=383)).logits
    assert torch.allclose(got, want, atol=1e-4), (got - want).abs().max()
    assert (got[..., :384] - before).abs().max() > 1e-2  # the adapter changed the model
