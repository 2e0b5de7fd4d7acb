"""Turn training output into a plain HF model directory (model + tokenizer), in one process.

    python -m worker.merge_lora --base BASE_DIR --adapter ADAPTER_DIR --output OUT_DIR
    python -m worker.merge_lora --zero_checkpoint OUTPUT/checkpoint-N --output OUT_DIR [--base BASE_DIR]

``--adapter``: a LoRA adapter written by ``worker/pretrain.py`` (the output dir or a
checkpoint-N in it). Its ``modules_to_save`` (embed_tokens/lm_head, resized when the vocabulary
was extended) replace the base's; the LoRA deltas are merged into the weights.

``--zero_checkpoint``: a DeepSpeed (ZeRO-2/3) full-weight ``checkpoint-N``; its sharded fp32
weights are gathered (``zero_to_fp32``) into the model described by the checkpoint's config.

Runs on CPU; no GPU or launcher needed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "vocab.json")


def _has_tokenizer(path: Path) -> bool:
    return any((path / name).is_file() for name in TOKENIZER_FILES)


def _dtype(name: str) -> Any:
    import torch

    return getattr(torch, name)


def adapter_vocab_size(adapter: Path) -> int | None:
    """Rows of the embedding saved in the adapter (it was resized when the vocab was extended)."""
    from safetensors import safe_open

    path = adapter / "adapter_model.safetensors"
    if not path.is_file():
        return None
    with safe_open(str(path), framework="pt") as fh:
        for key in fh.keys():  # noqa: SIM118 - safe_open has no __iter__
            if "embed_tokens" in key and key.endswith("weight"):
                return int(fh.get_slice(key).get_shape()[0])
    return None


def merge_adapter(base: Path | None, adapter: Path, output: Path, dtype: str = "float32") -> Path:
    """Merge a LoRA adapter into its base; returns ``output``."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from worker.training.hf_tokenizer import auto_tokenizer

    config = json.loads((adapter / "adapter_config.json").read_text())
    if base is None:
        if not config.get("base_model_name_or_path"):
            raise SystemExit("--base is required: the adapter does not name its base model")
        base = Path(config["base_model_name_or_path"])
    tokenizer = auto_tokenizer(str(adapter if _has_tokenizer(adapter) else base))
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=_dtype(dtype))
    embeddings: Any = model.get_input_embeddings()
    # A padded matrix (more rows than tokens) keeps its rows: never cut to the tokenizer.
    rows = adapter_vocab_size(adapter) or max(len(tokenizer), int(embeddings.weight.shape[0]))
    if rows != int(embeddings.weight.shape[0]):
        # The adapter carries the trained rows; the new rows' initial values do not matter.
        model.resize_token_embeddings(rows, mean_resizing=False)
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    output.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(str(output))
    tokenizer.save_pretrained(str(output))
    return output


def convert_zero_checkpoint(checkpoint: Path, output: Path, base: Path | None = None) -> Path:
    """A DeepSpeed full-weight checkpoint-N → a plain HF model; returns ``output``."""
    import torch
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint
    from transformers import AutoConfig, AutoModelForCausalLM

    from worker.training.hf_tokenizer import auto_tokenizer

    config_dir = checkpoint if (checkpoint / "config.json").is_file() else base
    if config_dir is None:
        raise SystemExit(f"{checkpoint} has no config.json: pass --base with the model's config")
    config = AutoConfig.from_pretrained(str(config_dir))
    state = get_fp32_state_dict_from_zero_checkpoint(str(checkpoint))
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = set(getattr(model, "_tied_weights_keys", None) or [])
    missing = [
        k
        for k in missing
        if k not in tied and not (k == "lm_head.weight" and config.tie_word_embeddings)
    ]
    if missing or unexpected:
        raise SystemExit(
            f"{checkpoint}: weights do not fit the config (missing {missing}, unexpected {unexpected})"
        )
    output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(output))
    tok_dir = checkpoint if _has_tokenizer(checkpoint) else base
    if tok_dir is not None and _has_tokenizer(tok_dir):
        auto_tokenizer(str(tok_dir)).save_pretrained(str(output))
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        allow_abbrev=False,
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--base", type=Path, help="the base HF model directory")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--adapter", type=Path, help="a LoRA adapter directory")
    source.add_argument("--zero_checkpoint", type=Path, help="a DeepSpeed checkpoint-N directory")
    parser.add_argument("--output", type=Path, required=True, help="where the plain model goes")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    args = parser.parse_args(argv)
    if args.adapter is not None:
        if not (args.adapter / "adapter_config.json").is_file():
            parser.error(f"--adapter {args.adapter} holds no adapter_config.json")
        out = merge_adapter(args.base, args.adapter, args.output, args.dtype)
    else:
        if not (args.zero_checkpoint / "latest").is_file():
            parser.error(
                f"--zero_checkpoint {args.zero_checkpoint} is not a DeepSpeed checkpoint (no 'latest')"
            )
        out = convert_zero_checkpoint(args.zero_checkpoint, args.output, args.base)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
