"""Parameters and memory per device of a run, from the model's ``config.json`` alone.

No weights are loaded: a decoder of the architectures the panel trains
(``cpt_contract/architectures.py``: Llama, Mistral, Qwen2/3, Gemma-2/3; their biases, norms and
q/k norms differ) is counted from its sizes, which is what ``worker/pretrain.py``'s ``start``
event then reports exactly:

* full: every weight (tied embeddings counted once), all trainable;
* LoRA: the base weights (frozen) + ``r * (in + out)`` per ``trainable`` target module + one full
  trainable copy of each ``modules_to_save`` module (PEFT keeps the original beside it); on a
  tied model ``embed_tokens`` and ``lm_head`` share one copy (the recipe ties them, so the
  merged model reloads with what was trained).

Memory per device follows the ZeRO paper's bookkeeping: weights at their dtype, gradients of the
trainable weights, AdamW's two fp32 states (+ an fp32 master copy when DeepSpeed holds 16-bit
weights), each divided over the data-parallel ranks by the ZeRO stage and moved to the host by
the offload presets; activations per layer ``s*b*h*(34 + 5*a*s/h)`` bytes at 16 bits
(Korthikanti et al. 2022; the ``5*a*s/h`` attention scores only under eager attention: SDPA,
transformers' default, never stores them), or with gradient checkpointing one 16-bit layer input per layer plus
one layer's activations during its recomputation; plus 16 B per token and vocabulary entry for
the fp32 logits, the loss's log-softmax and their gradients.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from cpt_contract.architectures import ARCHITECTURES, text_config, unsupported
from cpt_contract.runconfig.schema import RunConfig

BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}
#: transformers' LlamaConfig() defaults: what pretrain.py builds from scratch without a model.
LLAMA_DEFAULTS: dict[str, Any] = {
    "model_type": "llama",
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "max_position_embeddings": 2048,
    "vocab_size": 32000,
    "tie_word_embeddings": False,
    "attention_bias": False,
    "mlp_bias": False,
}
#: preset -> (ZeRO stage, optimizer offloaded, weights offloaded); see worker/ds_configs/.
ZERO: dict[str, tuple[int, bool, bool]] = {
    "none": (0, False, False),
    "zero2": (2, False, False),
    "zero2_offload": (2, True, False),
    "zero3": (3, False, False),
    "zero3_offload": (3, True, True),
}


class Shape(BaseModel):
    """The sizes that decide the parameter count."""

    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied: bool
    #: Biases of q/k/v and of o (``cpt_contract.architectures``).
    qkv_bias: bool
    o_bias: bool
    mlp_bias: bool
    norms_per_layer: int = 2
    qk_norm: bool = False
    dtype: str
    #: Eager attention stores the a*s*s scores; SDPA (transformers' default) and flash do not.
    eager_attention: bool = False


class ParamEstimate(BaseModel):
    total: int
    trainable: int
    lora: int
    modules_to_save: int
    #: Target modules this count does not know (left out of ``lora``).
    unknown_modules: list[str] = []


class MemoryEstimate(BaseModel):
    """Bytes per device (GPU) by component; ``offloaded`` is what the host holds instead."""

    world_size: int
    zero_stage: int
    weights: int
    gradients: int
    optimizer: int
    activations: int
    activations_without_checkpointing: int
    activations_with_checkpointing: int
    total: int
    offloaded: int
    weight_dtype: str


class ModelEstimate(BaseModel):
    tokens_per_step: int | None
    block_size: int | None
    params: ParamEstimate | None
    memory: MemoryEstimate | None
    #: Decoder layers (the per-layer overhead of generating a token: eval_time.py).
    layers: int | None = None
    note: str | None = None


def _config(config: RunConfig) -> dict[str, Any] | None:
    m = config.model
    path = m.config_name or m.model_name_or_path
    if not path:
        out = dict(LLAMA_DEFAULTS)
        for item in (m.config_overrides or "").split(","):
            key, _, value = item.partition("=")
            if key.strip() and value.strip():
                try:
                    out[key.strip()] = json.loads(value.strip().lower())
                except ValueError:
                    out[key.strip()] = value.strip()
        if "head_dim" not in out:
            out["head_dim"] = int(out["hidden_size"]) // int(out["num_attention_heads"])
        return out
    try:
        data = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    return data


def shape_of(cfg: dict[str, Any], vocab: int | None) -> Shape | None:
    """The decoder's sizes; None for an architecture the panel does not train."""
    if unsupported(cfg):
        return None
    arch = ARCHITECTURES[str(cfg["model_type"])]
    cfg = text_config(cfg)
    try:
        hidden, heads = int(cfg["hidden_size"]), int(cfg["num_attention_heads"])
        dtype = cfg.get("dtype") or cfg.get("torch_dtype") or "float32"
        bias = bool(cfg.get("attention_bias", False))
        qkv_bias = {"config": bias, "qkv": True, "none": False}[arch.attention_bias]
        return Shape(
            hidden=hidden,
            intermediate=int(cfg["intermediate_size"]),
            layers=int(cfg["num_hidden_layers"]),
            heads=heads,
            kv_heads=int(cfg.get("num_key_value_heads") or heads),
            head_dim=int(cfg.get("head_dim") or hidden // heads),
            vocab=max(vocab or 0, int(cfg["vocab_size"])),
            tied=bool(cfg.get("tie_word_embeddings", True)),
            qkv_bias=qkv_bias,
            o_bias=qkv_bias and arch.attention_bias == "config",
            mlp_bias=arch.mlp_bias_from_config and bool(cfg.get("mlp_bias", False)),
            norms_per_layer=arch.norms_per_layer,
            qk_norm=arch.qk_norm,
            dtype=dtype if dtype in BYTES else "float32",
            eager_attention="eager"
            in (cfg.get("attn_implementation"), cfg.get("_attn_implementation")),
        )
    except (KeyError, TypeError, ValueError):
        return None


def linear_shapes(s: Shape) -> dict[str, tuple[int, int, bool, int]]:
    """name -> (in, out, bias, how many) of every linear/embedding module."""
    q, kv = s.heads * s.head_dim, s.kv_heads * s.head_dim
    ab, mb, n = s.qkv_bias, s.mlp_bias, s.layers
    return {
        "q_proj": (s.hidden, q, ab, n),
        "k_proj": (s.hidden, kv, ab, n),
        "v_proj": (s.hidden, kv, ab, n),
        "o_proj": (q, s.hidden, s.o_bias, n),
        "gate_proj": (s.hidden, s.intermediate, mb, n),
        "up_proj": (s.hidden, s.intermediate, mb, n),
        "down_proj": (s.intermediate, s.hidden, mb, n),
        # An embedding's weight is (vocab, hidden); LoRA on it adds r * (vocab + hidden) too.
        "embed_tokens": (s.vocab, s.hidden, False, 1),
        "lm_head": (s.hidden, s.vocab, False, 1),
    }


def _names(text: str | None) -> list[str]:
    return [n.strip() for n in (text or "").split(",") if n.strip()]


def count_params(s: Shape, config: RunConfig) -> ParamEstimate:
    modules = linear_shapes(s)
    # RMSNorms per layer and the final one; per-head q/k norms.
    base = s.layers * s.norms_per_layer * s.hidden + s.hidden
    if s.qk_norm:
        base += s.layers * 2 * s.head_dim
    for name, (i, o, bias, n) in modules.items():
        if name == "lm_head" and s.tied:
            continue  # shares embed_tokens' weight
        base += n * (i * o + (o if bias else 0))
    method = config.method
    if method.finetuning_type == "full":
        return ParamEstimate(total=base, trainable=base, lora=0, modules_to_save=0)
    lora, unknown = 0, []
    for name in _names(method.trainable):
        if name not in modules:
            unknown.append(name)
            continue
        i, o, _, n = modules[name]
        lora += n * method.lora_rank * (i + o)
    saved = 0
    # Empty: none (an explicit empty --modules_to_save, not the script's default).
    to_save = _names(method.modules_to_save)
    if s.tied and {"embed_tokens", "lm_head"} & set(to_save):
        # One copy for both ends of a tied model (worker/training/modeling.py::wrap_lora).
        to_save = [n for n in to_save if n != "lm_head"]
        to_save += [] if "embed_tokens" in to_save else ["embed_tokens"]
    for name in to_save:
        if name not in modules:
            unknown.append(name)
            continue
        i, o, bias, n = modules[name]
        saved += n * (i * o + (o if bias else 0))
    return ParamEstimate(
        total=base + lora + saved,
        trainable=lora + saved,
        lora=lora,
        modules_to_save=saved,
        unknown_modules=unknown,
    )


def weight_dtype(s: Shape, config: RunConfig) -> str:
    """The dtype the weights live in during training (worker/training/modeling.py)."""
    chosen = config.model.torch_dtype
    dtype = s.dtype if chosen in (None, "auto") else chosen
    deepspeed = config.launch.deepspeed != "none"
    precision = config.training.precision
    if deepspeed and precision in ("bf16", "fp16"):
        return "bfloat16" if precision == "bf16" else "float16"  # DeepSpeed casts the model
    if dtype == "float16" and not deepspeed:
        return "float32"  # fp16 weights are trained in fp32 (see build_model)
    return dtype


def activation_bytes(
    s: Shape, micro_batch: int, block: int, checkpointing: bool, act_bytes: int
) -> int:
    """One micro-batch's saved activations (the formula counts 16-bit values)."""
    sbh = block * micro_batch * s.hidden
    scores = 5 * s.heads * block / s.hidden if s.eager_attention else 0
    per_layer = sbh * (34 + scores) * act_bytes / 2
    # fp32 logits, the log-softmax the loss keeps for backward, and both their gradients.
    logits = 16 * micro_batch * block * s.vocab
    if checkpointing:
        return int(s.layers * sbh * act_bytes + per_layer + logits)
    return int(s.layers * per_layer + logits)


def memory(s: Shape, params: ParamEstimate, config: RunConfig, block: int) -> MemoryEstimate:
    t, launch = config.training, config.launch
    world = launch.nproc_per_node * launch.nnodes
    stage, offload_optimizer, offload_weights = ZERO[launch.deepspeed]
    dtype = weight_dtype(s, config)
    wbytes = BYTES[dtype]
    weights = params.total * wbytes
    # Trainable weights: DeepSpeed keeps 16-bit ones (+ fp32 master in the optimizer); the HF
    # Trainer trains them in their own dtype, AdamW's states matching it.
    mixed = stage > 0 and wbytes == 2
    gradients = params.trainable * wbytes
    optimizer = params.trainable * (12 if mixed else 2 * wbytes)
    if stage >= 1:
        optimizer //= world
    if stage >= 2:
        gradients //= world
    if stage >= 3:
        weights //= world
    offloaded = 0
    if offload_optimizer:
        offloaded += optimizer
        optimizer = 0
    if offload_weights:
        offloaded += weights
        weights = 0
    act = 4 if t.precision == "fp32" else 2
    mb = t.per_device_train_batch_size
    without = activation_bytes(s, mb, block, False, act)
    with_ = activation_bytes(s, mb, block, True, act)
    activations = with_ if t.gradient_checkpointing else without
    return MemoryEstimate(
        world_size=world,
        zero_stage=stage,
        weights=weights,
        gradients=gradients,
        optimizer=optimizer,
        activations=activations,
        activations_without_checkpointing=without,
        activations_with_checkpointing=with_,
        total=weights + gradients + optimizer + activations,
        offloaded=offloaded,
        weight_dtype=dtype,
    )


def model_estimate(config: RunConfig, tokenizer_vocab: int | None) -> ModelEstimate:
    cfg = _config(config)
    if cfg is None:
        return ModelEstimate(
            tokens_per_step=None, block_size=None, params=None, memory=None,
            note="the model directory has no readable config.json",
        )  # fmt: skip
    limit = text_config(cfg).get("max_position_embeddings")
    block = config.data.block_size or min(1024, int(limit) if isinstance(limit, int) else 1024)
    t, launch = config.training, config.launch
    per_step = t.per_device_train_batch_size * t.gradient_accumulation_steps
    tokens_per_step = block * per_step * launch.nproc_per_node * launch.nnodes
    shape = shape_of(cfg, tokenizer_vocab)
    if shape is None:
        return ModelEstimate(
            tokens_per_step=tokens_per_step, block_size=block, params=None, memory=None,
            note=unsupported(cfg) or "the config.json lacks the decoder's sizes",
        )  # fmt: skip
    params = count_params(shape, config)
    return ModelEstimate(
        tokens_per_step=tokens_per_step,
        block_size=block,
        params=params,
        memory=memory(shape, params, config, block),
        layers=shape.layers,
    )
