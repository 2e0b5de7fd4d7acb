"""Continue a prompt with a run's checkpoint (the run page's "Try it"), streaming to stdout.

    python -m worker.generate --base BASE_DIR --checkpoint OUTPUT/checkpoint-N \\
        --prompt "..." [--max_new_tokens 64] [--mode greedy|sampled] [--seed 1234] --json result.json

A LoRA checkpoint (``adapter_config.json``) is loaded on ``--base`` with the base's embeddings
resized to the adapter's rows first (an extended tokenizer); a full-weight checkpoint is loaded
as it is. The tokenizer is the checkpoint's own (``pretrain.py`` saves it there), else the
base's. The continuation is printed as it is generated (the job log, shipped every 0.5 s, is the
stream) and written to ``--json`` as ``{"prompt", "text", "mode", "new_tokens", "checkpoint"}``.
Bad input: ``error: --argument ...``, exit 2. Imports nothing of the panel.
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

from worker.merge_lora import _has_tokenizer, adapter_vocab_size  # noqa: E402

SAMPLING = {"do_sample": True, "temperature": 0.8, "top_p": 0.95}


def load(base: Path | None, checkpoint: Path) -> tuple[Any, Any]:
    """(model, tokenizer) of a checkpoint, in eval mode on the CPU or the first GPU."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    lora = (checkpoint / "adapter_config.json").is_file()
    tok_dir = checkpoint if _has_tokenizer(checkpoint) else base
    if tok_dir is None:
        raise SystemExit(f"error: --base: {checkpoint} has no tokenizer; give the base model")
    tokenizer = AutoTokenizer.from_pretrained(str(tok_dir))
    if lora:
        from peft import PeftModel

        if base is None:
            raise SystemExit("error: --base is required for a LoRA checkpoint")
        model: Any = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
        rows = adapter_vocab_size(checkpoint) or len(tokenizer)
        embeddings: Any = model.get_input_embeddings()
        if rows != int(embeddings.weight.shape[0]):
            # The adapter carries the trained rows (modules_to_save); their start values do not matter.
            model.resize_token_embeddings(rows, mean_resizing=False)
        model = PeftModel.from_pretrained(model, str(checkpoint))
    else:
        if not (checkpoint / "config.json").is_file():
            raise SystemExit(
                f"error: --checkpoint {checkpoint} holds no model weights (a ZeRO-3 shard?): "
                "merge it first (python -m worker.merge_lora --zero_checkpoint ...)"
            )
        model = AutoModelForCausalLM.from_pretrained(str(checkpoint), dtype=torch.float32)
    moved: Any = model.to(device)
    return moved.eval(), tokenizer


def generate(
    model: Any, tokenizer: Any, prompt: str, max_new_tokens: int, mode: str, seed: int
) -> tuple[str, int]:
    import torch
    from transformers import TextStreamer

    class _Stdout(TextStreamer):
        def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
            print(text, end="\n" if stream_end else "", flush=True)

    enc = tokenizer(prompt, return_tensors="pt").to(model.device)
    torch.manual_seed(seed)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    kwargs: dict[str, Any] = SAMPLING if mode == "sampled" else {"do_sample": False}
    with torch.no_grad():
        out = model.generate(
            **enc,
            max_new_tokens=max_new_tokens,
            pad_token_id=pad,
            streamer=_Stdout(tokenizer, skip_prompt=True, skip_special_tokens=True),
            **kwargs,
        )
    new = out[0, enc["input_ids"].shape[1] :]
    return tokenizer.decode(new, skip_special_tokens=True), int(new.shape[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base", type=Path, help="the base HF model (needed for LoRA)")
    parser.add_argument("--checkpoint", type=Path, required=True, help="checkpoint-N or output")
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--max_new_tokens", type=int, default=64)
    parser.add_argument("--mode", choices=["greedy", "sampled"], default="greedy")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--json", type=Path, required=True, help="where the result goes")
    args = parser.parse_args(argv)
    if not args.checkpoint.is_dir():
        parser.error(f"--checkpoint {args.checkpoint} is not a directory")
    if not 1 <= args.max_new_tokens <= 4096:
        parser.error("--max_new_tokens must be in [1, 4096]")
    if not args.prompt:
        parser.error("--prompt is empty")
    model, tokenizer = load(args.base, args.checkpoint)
    print(f"[{args.mode}] {args.prompt}", flush=True)
    text, n = generate(model, tokenizer, args.prompt, args.max_new_tokens, args.mode, args.seed)
    result = {
        "prompt": args.prompt,
        "text": text,
        "mode": args.mode,
        "new_tokens": n,
        "checkpoint": str(args.checkpoint),
    }
    args.json.write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
