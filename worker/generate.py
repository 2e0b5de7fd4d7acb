"""Continue a prompt with a training checkpoint ("Try it"), streaming the new text as it comes.

    python -m worker.generate --checkpoint RUN/output/checkpoint-N [--base BASE_DIR]
        [--tokenizer DIR] --prompt TEXT [--max_new_tokens 64] [--mode greedy|sampled]
        [--temperature 0.8] [--seed 0] [--json OUT]

The checkpoint is what ``worker/pretrain.py`` saved: a LoRA adapter (loaded on ``--base``, whose
embeddings are first resized to the adapter's rows when the vocabulary was extended) or full
weights in HF form. The tokenizer is the checkpoint's own when it has one (an extended tokenizer
is saved with every checkpoint), else ``--tokenizer``, else the base's. After the loading lines
the tool prints ``GENERATE_MARKER`` and then the continuation as it is decoded, so whoever ships
the log streams the answer; ``--json`` gets the whole result at the end.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from cpt_contract.jobs import GENERATE_MARKER  # noqa: E402
from worker.merge_lora import _has_tokenizer, adapter_vocab_size  # noqa: E402


def load_model(checkpoint: Path, base: Path | None) -> Any:
    """The checkpoint as a ready-to-generate model (LoRA on its base, or full weights)."""
    from transformers import AutoModelForCausalLM

    if (checkpoint / "adapter_config.json").is_file():
        from peft import PeftModel

        if base is None:
            config = json.loads((checkpoint / "adapter_config.json").read_text())
            if not config.get("base_model_name_or_path"):
                raise SystemExit("--base is required: the adapter does not name its base model")
            base = Path(config["base_model_name_or_path"])
        model = AutoModelForCausalLM.from_pretrained(str(base))
        rows = adapter_vocab_size(checkpoint)
        embeddings: Any = model.get_input_embeddings()
        if rows is not None and rows != int(embeddings.weight.shape[0]):
            model.resize_token_embeddings(rows, mean_resizing=False)
        return PeftModel.from_pretrained(model, str(checkpoint))
    if (checkpoint / "config.json").is_file() and any(checkpoint.glob("*.safetensors")):
        return AutoModelForCausalLM.from_pretrained(str(checkpoint))
    raise SystemExit(
        f"--checkpoint {checkpoint}: neither a LoRA adapter nor HF model weights "
        "(a DeepSpeed-only checkpoint: merge it into a model first)"
    )


class _Printer:
    """A transformers streamer that prints each decoded piece at once (text only, no prompt)."""

    def __init__(self, tokenizer: Any, prompt_tokens: int) -> None:
        self.tokenizer, self.skip = tokenizer, prompt_tokens
        self.ids: list[int] = []
        self.printed = ""

    def put(self, value: Any) -> None:
        ids = value.reshape(-1).tolist()
        if self.skip:  # the first call carries the prompt
            self.skip = 0
            return
        self.ids.extend(ids)
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        # Hold back a trailing replacement character: the rest of a multi-byte piece is next.
        if text.endswith("\ufffd"):
            return
        if text.startswith(self.printed):
            sys.stdout.write(text[len(self.printed) :])
            sys.stdout.flush()
        self.printed = text

    def end(self) -> None:
        sys.stdout.write("\n")
        sys.stdout.flush()


def generate(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from worker.training.hf_tokenizer import auto_tokenizer

    started = time.perf_counter()
    checkpoint: Path = args.checkpoint
    tok_dir = (
        checkpoint if _has_tokenizer(checkpoint) else (args.tokenizer or args.base or checkpoint)
    )
    tokenizer = auto_tokenizer(str(tok_dir))
    model = load_model(checkpoint, args.base)
    model.eval()
    print(f"loaded {checkpoint} in {time.perf_counter() - started:.1f} s", flush=True)
    inputs = tokenizer(args.prompt, return_tensors="pt")
    prompt_tokens = int(inputs["input_ids"].shape[1])
    kwargs: dict[str, Any] = {"max_new_tokens": args.max_new_tokens, "do_sample": False}
    if args.mode == "sampled":
        torch.manual_seed(args.seed)
        kwargs.update(do_sample=True, temperature=args.temperature, top_k=0, top_p=1.0)
    if tokenizer.pad_token_id is None and tokenizer.eos_token_id is not None:
        kwargs["pad_token_id"] = tokenizer.eos_token_id
    print(GENERATE_MARKER, flush=True)
    began = time.perf_counter()
    printer = _Printer(tokenizer, prompt_tokens)
    with torch.no_grad():
        out = model.generate(**inputs, streamer=printer, **kwargs)
    new_ids = out[0, prompt_tokens:].tolist()
    seconds = time.perf_counter() - began
    return {
        "checkpoint": str(checkpoint),
        "prompt": args.prompt,
        "text": tokenizer.decode(new_ids, skip_special_tokens=True),
        "mode": args.mode,
        "seed": args.seed if args.mode == "sampled" else None,
        "prompt_tokens": prompt_tokens,
        "new_tokens": len(new_ids),
        "seconds": round(seconds, 3),
        "tokens_per_second": round(len(new_ids) / seconds, 2) if seconds > 0 else None,
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--base", type=Path, help="the base model of a LoRA checkpoint")
    parser.add_argument("--tokenizer", type=Path, help="when the checkpoint has no tokenizer")
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--max_new_tokens", type=int, default=64)
    parser.add_argument("--mode", choices=["greedy", "sampled"], default="greedy")
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the result here")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.checkpoint.is_dir():
        parser.error(f"--checkpoint {args.checkpoint} is not a directory")
    result = generate(args)
    if args.json:
        args.json.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"{result['new_tokens']} new tokens in {result['seconds']:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
