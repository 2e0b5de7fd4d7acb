"""Tiny models of the architectures the panel trains, built locally from their configs (no
download): 2 layers, hidden 64, grouped KV heads, the tiny demo Llama's tokenizer (384 tokens;
its extension has 768). Weights are random (seeded); what is tested is that each trains,
extends, resumes, merges and reloads, and that its counts equal the estimate.

- Qwen2 and Qwen3 have *padded* vocabularies, as the real ones do: Qwen2's 832 rows hold the
  whole extension (the new tokens reuse padded rows), Qwen3's 448 do not (64 reused, the matrix
  grows past them);
- Gemma-2 and Gemma-3 tie their embeddings and soft-cap their logits (Gemma-2 its attention too).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

#: model_type -> (rows of the embedding matrix, config extras).
TINY: dict[str, tuple[int, dict[str, Any]]] = {
    "llama": (384, {}),
    "mistral": (384, {"sliding_window": None}),
    "qwen2": (832, {}),
    "qwen3": (448, {}),
    "gemma2": (384, {"final_logit_softcapping": 30.0, "attn_logit_softcapping": 50.0}),
    "gemma3_text": (384, {"final_logit_softcapping": 30.0}),
}
TIED = {"gemma2", "gemma3_text"}
SIZES: dict[str, Any] = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "max_position_embeddings": 512,
}


def build_tiny(model_type: str, tokenizer_dir: Path, out: Path) -> Path:
    """A tiny ``model_type`` model with ``tokenizer_dir``'s tokenizer, saved into ``out`` once."""
    if (out / "config.json").is_file():
        return out
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    rows, extra = TINY[model_type]
    config = AutoConfig.for_model(
        model_type,
        **SIZES,
        **extra,
        vocab_size=rows,
        tie_word_embeddings=model_type in TIED,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(str(partial))
    tok.save_pretrained(str(partial))
    partial.rename(out)
    return out
