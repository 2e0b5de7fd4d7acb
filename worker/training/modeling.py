"""The model: config (+ overrides), build or load, vocabulary resize, module-name checks, LoRA."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoModelForCausalLM

from worker.training.arguments import (
    ModelArguments,
    PretrainArguments,
    parse_config_overrides,
    split_names,
)
from worker.training.embeddings import embedding_rows, load_base_tokenizer, resize_embeddings
from worker.training.failures import InputError

logger = logging.getLogger("pretrain")


def load_config(model_args: ModelArguments) -> Any:
    kwargs = {"cache_dir": model_args.cache_dir, "revision": model_args.model_revision}
    try:
        if model_args.config_name:
            return AutoConfig.from_pretrained(model_args.config_name, **kwargs)
        if model_args.model_name_or_path:
            return AutoConfig.from_pretrained(model_args.model_name_or_path, **kwargs)
    except (OSError, ValueError) as exc:
        flag = "--config_name" if model_args.config_name else "--model_name_or_path"
        raise InputError(f"{flag}: cannot load a model config: {exc}") from exc
    from transformers import LlamaConfig

    return LlamaConfig()


def module_names(model: Any) -> list[str]:
    """Short names of the model's leaf modules (what --trainable/--modules_to_save match)."""
    names = set()
    for name, module in model.named_modules():
        if name and not list(module.children()):
            names.add(name.split(".")[-1])
    return sorted(names)


def check_module_names(model: Any, flag: str, wanted: list[str]) -> None:
    full = [n for n, _ in model.named_modules() if n]
    missing = [w for w in wanted if not any(n == w or n.endswith("." + w) for n in full)]
    if missing:
        raise InputError(
            f"{flag}: the model has no module named {', '.join(missing)}; "
            f"its module names are: {', '.join(module_names(model))}"
        )


def max_positions(config: Any) -> int | None:
    for attr in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _dtype(name: str | None) -> Any:
    if name in (None, "auto"):
        return name
    return getattr(torch, name)


def build_model(
    model_args: ModelArguments, args: PretrainArguments, tokenizer: Any, config: Any
) -> tuple[Any, int, dict[str, Any] | None]:
    """The model to train (PEFT-wrapped for LoRA), the vocabulary size it started with and, when
    the tokenizer extends it, what was done to the embeddings (``extend_vocabulary``)."""
    dtype = _dtype(model_args.torch_dtype)
    if model_args.model_name_or_path:
        model: Any = AutoModelForCausalLM.from_pretrained(
            model_args.model_name_or_path,
            config=config,
            dtype=dtype,
            cache_dir=model_args.cache_dir,
            revision=model_args.model_revision,
            token=True if model_args.use_auth_token else None,
        )
    else:
        config.vocab_size = len(tokenizer)
        for attr in ("bos_token_id", "eos_token_id", "pad_token_id"):
            value = getattr(tokenizer, attr, None)
            if value is not None:
                setattr(config, attr, value)
        model = AutoModelForCausalLM.from_config(
            config, dtype=dtype if isinstance(dtype, torch.dtype) else None
        )
        n = sum(p.numel() for p in model.parameters())
        logger.info(
            "built a new %s model from its config: %.2fM parameters", config.model_type, n / 1e6
        )

    old_vocab, vocabulary = extend_vocabulary(model_args, model, tokenizer)
    if vocabulary is not None:
        logger.warning(vocabulary["message"])
        print(vocabulary["message"], flush=True)

    if args.gradient_checkpointing:
        if args.gradient_checkpointing_kwargs is None:
            # Non-reentrant checkpointing works with frozen inputs (LoRA) and with DeepSpeed.
            args.gradient_checkpointing_kwargs = {"use_reentrant": False}
        model.config.use_cache = False

    if args.finetuning_type == "lora":
        model = wrap_lora(model, args)
    if not args.deepspeed and any(p.dtype == torch.float16 for p in model.parameters()):
        # (DeepSpeed keeps fp32 master weights itself.)
        if args.fp16:
            # fp16 trainable weights break the AMP grad scaler ("Attempting to unscale FP16
            # gradients"): keep those in fp32, autocast runs the matmuls in fp16.
            for p in model.parameters():
                if p.requires_grad and p.dtype == torch.float16:
                    p.data = p.data.float()
        else:
            # Without --fp16 there is no autocast or loss scaling: pure fp16 training would mix
            # dtypes in one matmul or lose updates; train in fp32.
            logger.warning("--torch_dtype float16 without --fp16: training in float32")
            model = model.float()
    return model, old_vocab, vocabulary


def is_tied(model: Any) -> bool:
    """Input and output embeddings are one matrix (Gemma, SmolLM2)."""
    head = model.get_output_embeddings()
    return head is None or head.weight is model.get_input_embeddings().weight


def extend_vocabulary(
    model_args: ModelArguments, model: Any, tokenizer: Any
) -> tuple[int, dict[str, Any] | None]:
    """Fit the embeddings to ``tokenizer``: (rows before, what was done or None).

    A tokenizer that extends the base's takes the rows from the base tokenizer's size on: the
    padded rows a model may have past its tokenizer first (reused), then new rows (grown). The
    model's own tokenizer with a padded matrix is left as it is. A tokenizer smaller than the
    base's is not an extension of it (refused)."""
    old_vocab = embedding_rows(model.get_input_embeddings().weight)
    new_vocab = len(tokenizer)
    own_tokenizer = not (model_args.tokenizer_name_or_path or model_args.tokenizer_name) or (
        model_args.tokenizer_name_or_path == model_args.model_name_or_path
    )
    base_tokenizer = None
    if not own_tokenizer and model_args.model_name_or_path:
        # The base's own tokenizer: where the new tokens start, and their pieces.
        base_tokenizer = load_base_tokenizer(
            model_args.model_name_or_path,
            cache_dir=model_args.cache_dir,
            revision=model_args.model_revision,
        )
    if own_tokenizer or (base_tokenizer is not None and len(base_tokenizer) == new_vocab):
        if new_vocab <= old_vocab:
            if new_vocab < old_vocab:
                # The model's own tokenizer with padded embeddings (rounded to 64) is normal.
                logger.warning(
                    "embeddings have %d rows for %d tokens (padded)", old_vocab, new_vocab
                )
            return old_vocab, None
        base_len = old_vocab  # a tokenizer bigger than its own model: the matrix grows
    else:
        # Without the base's tokenizer, its size is taken to be the matrix's.
        base_len = len(base_tokenizer) if base_tokenizer is not None else old_vocab
        if new_vocab < base_len:
            raise InputError(
                f"--tokenizer_name_or_path has {new_vocab} tokens but the model's tokenizer has "
                f"{base_len}: it is not this model's tokenizer or an extension of it"
            )
        if new_vocab == base_len:
            return old_vocab, None
    method = model_args.new_embeddings_init
    pieces_from = base_tokenizer if method == "subtoken_mean" else None
    done = resize_embeddings(model, tokenizer, new_vocab, method, pieces_from, first_new=base_len)
    tied = is_tied(model)
    parts = [f"vocabulary extended from {base_len} to {new_vocab} tokens"]
    if done["reused_padded_rows"]:
        parts.append(
            f"{done['reused_padded_rows']} padded rows of the {old_vocab}-row matrix reused"
            + (f", {done['grown_rows']} rows grown past them" if done["grown_rows"] else "")
        )
    elif done["grown_rows"]:
        parts.append(f"matrix grown from {old_vocab} to {done['matrix_rows']} rows")
    parts.append(
        f"new rows: {done['method']}"
        + (f", {done['from_pieces']} from base pieces" if done["method"] == "subtoken_mean" else "")
    )
    parts.append("tied embeddings stay tied" if tied else "input and output rows both set")
    vocabulary = {
        "base_tokenizer": base_len,
        "tokenizer": new_vocab,
        "rows_before": old_vocab,
        "rows": done["matrix_rows"],
        "new_tokens": new_vocab - base_len,
        "reused_padded_rows": done["reused_padded_rows"],
        "grown_rows": done["grown_rows"],
        "init": done["method"],
        "from_pieces": done["from_pieces"],
        "tied": tied,
        "message": "; ".join(parts),
    }
    return old_vocab, vocabulary


def wrap_lora(model: Any, args: PretrainArguments) -> Any:
    from peft import LoraConfig, PeftModel, TaskType, get_peft_model

    targets = split_names(args.trainable)
    to_save = split_names(args.modules_to_save) or None
    check_module_names(model, "--trainable", targets)
    if to_save:
        check_module_names(model, "--modules_to_save", to_save)
    # A tied model (Gemma, SmolLM2) keeps one trained matrix for both ends: PEFT ties the
    # lm_head's saved copy to embed_tokens' (one copy trained, merged and saved), so the merged
    # model reloads with what was trained instead of a head its config re-ties away.
    tie = (
        bool(to_save) and is_tied(model) and bool({"embed_tokens", "lm_head"} & set(to_save or []))
    )
    if tie and "embed_tokens" not in (to_save or []):
        to_save = [*(to_save or []), "embed_tokens"]
    if args.gradient_checkpointing:
        model.enable_input_require_grads()
    if args.peft_path:
        if not Path(args.peft_path, "adapter_config.json").is_file():
            raise InputError(f"--peft_path {args.peft_path} holds no adapter_config.json")
        logger.info("continuing the LoRA adapter in %s", args.peft_path)
        return PeftModel.from_pretrained(model, args.peft_path, is_trainable=True)
    alpha: Any = args.lora_alpha  # peft annotates int; the seed's flag is a float (32.0)
    config = LoraConfig(
        task_type=TaskType.CAUSAL_LM,
        target_modules=targets,
        r=args.lora_rank,
        lora_alpha=alpha,
        lora_dropout=args.lora_dropout,
        modules_to_save=to_save,
        ensure_weight_tying=tie,
    )
    return get_peft_model(model, config)


def apply_config_overrides(config: Any, model_args: ModelArguments) -> None:
    """``--config_overrides`` onto a from-scratch config (a pretrained model keeps its own)."""
    overrides = model_args.config_overrides
    if not overrides:
        return
    if model_args.model_name_or_path:
        logger.warning("--config_overrides is only used when training from scratch; ignored")
        return
    try:
        config.update_from_string(overrides)
    except ValueError as exc:
        raise InputError(f"--config_overrides: {exc}") from exc
    keys = parse_config_overrides(overrides)
    # head_dim is derived at construction; keep it consistent with the new sizes.
    if (
        getattr(config, "head_dim", None)
        and "head_dim" not in keys
        and {"hidden_size", "num_attention_heads"} & keys.keys()
    ):
        config.head_dim = config.hidden_size // config.num_attention_heads


def choose_block_size(requested: int | None, config: Any) -> int:
    """``--block_size``, or up to 1024 tokens; never more than the model's positions."""
    limit = max_positions(config)
    block_size = requested or min(1024, limit or 1024)
    if limit is not None and block_size > limit:
        raise InputError(
            f"--block_size {block_size} is larger than the model's maximum positions "
            f"(max_position_embeddings = {limit}); use --block_size {limit} or less"
        )
    return block_size


def count_parameters(model: Any) -> tuple[int, int]:
    """(total, trainable) parameters; ZeRO-3 partitions hold their full size in ``ds_numel``."""
    total = sum(p.ds_numel if hasattr(p, "ds_numel") else p.numel() for p in model.parameters())
    trainable = sum(
        (p.ds_numel if hasattr(p, "ds_numel") else p.numel())
        for p in model.parameters()
        if p.requires_grad
    )
    return total, trainable
