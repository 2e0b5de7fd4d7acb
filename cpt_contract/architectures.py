"""The decoder architectures the panel trains, and the few facts that make their parameter counts
differ (``backend/services/model_estimates.py`` counts from them; the API refuses any other
``model_type`` with a 422 at the model field, naming it, before anything is queued).

Each is a Llama-shaped decoder (q/k/v/o attention with grouped KV heads, a gated MLP, RMSNorm
weights of ``hidden`` each); what differs:

- biases: Llama, Qwen3, Gemma-2/3 take ``attention_bias`` (q, k, v and o) from the config;
  Qwen2 always has q/k/v biases and none on o; Mistral has none;
- norms per layer: 2 (input, post-attention), Gemma-2/3 4 (+ pre/post feed-forward);
- per-head q/k norms (``head_dim`` weights each): Qwen3, Gemma-3;
- tied embeddings: Gemma ties by default (``tie_word_embeddings`` absent means tied for all
  of them, as transformers' configs default; each config says so in practice).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class Architecture:
    model_type: str
    label: str
    #: "config": q/k/v/o biases when ``attention_bias``; "qkv": always on q/k/v, never on o;
    #: "none": never.
    attention_bias: Literal["config", "qkv", "none"]
    norms_per_layer: int
    qk_norm: bool
    #: Whether the MLP's projections take ``mlp_bias`` from the config (Llama only).
    mlp_bias_from_config: bool = False


ARCHITECTURES: dict[str, Architecture] = {
    a.model_type: a
    for a in (
        Architecture("llama", "Llama", "config", 2, False, mlp_bias_from_config=True),
        Architecture("mistral", "Mistral", "none", 2, False),
        Architecture("qwen2", "Qwen2", "qkv", 2, False),
        Architecture("qwen3", "Qwen3", "config", 2, True),
        Architecture("gemma2", "Gemma-2", "config", 4, False),
        Architecture("gemma3_text", "Gemma-3 (text)", "config", 4, True),
    )
}


def text_config(config: dict[str, Any]) -> dict[str, Any]:
    """The decoder's part of a ``config.json`` (a multimodal one nests it in ``text_config``)."""
    inner = config.get("text_config")
    return inner if isinstance(inner, dict) else config


def unsupported(config: dict[str, Any]) -> str | None:
    """Why the panel does not train this ``config.json`` (None: it does)."""
    model_type = config.get("model_type")
    archs = config.get("architectures") or []
    named = f"{archs[0]} (model_type {model_type!r})" if archs else f"model_type {model_type!r}"
    if model_type in ARCHITECTURES:
        return None
    known = ", ".join(a.label for a in ARCHITECTURES.values())
    hint = ""
    if model_type == "gemma3":
        hint = "; a multimodal Gemma-3 is not, its text-only sizes (gemma-3-1b, gemma3_text) are"
    return f"the architecture {named} is not supported: the panel trains {known}{hint}"
