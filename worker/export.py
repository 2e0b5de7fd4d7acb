"""Export a merged model (or a full-weight checkpoint) for serving, then score both on the run's
evaluation sets so a change the export made (a dtype, a merge) is visible.

    python -m worker.export --source=DIR --output=DIR [--dtype=bfloat16] [--max_shard_size=2GB]
        [--eval_sets=JSON] [--block_size=N] [--json=FILE]

The output is the layout transformers and vLLM load: ``model-0000i-of-0000n.safetensors`` shards
with ``model.safetensors.index.json`` (one ``model.safetensors`` when it fits one shard), the
config, ``generation_config.json``, the tokenizer and the source's ``README.md`` (the model
card). Built in ``<output>.partial`` and renamed, so a half-written export is never offered.

``--eval_sets``: the run's sets (``{"name": "path" | {"path", "max_documents",
"max_characters", "text_column"}}``). Each set's windows are built once, with the source's
tokenizer, and scored by the source model (as stored) and by the exported one, summing float32
NLL: the result's ``eval`` rows give bits per character of both and their difference.

GGUF is not written: no maintained HF-to-GGUF converter installs from PyPI (see
``docs/export.md``). Runs on CPU. Imports nothing of the panel.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

DEFAULT_CHARACTERS = 20_000
LN2 = math.log(2)


def _windows(tokenizer: Any, eval_sets: dict[str, Any], block_size: int) -> list[Any]:
    from worker.data.eval_sets import Budget, build_windows

    out = []
    for name, spec in eval_sets.items():
        spec = {"path": spec} if isinstance(spec, str) else dict(spec)
        path = Path(spec["path"])
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        budget = Budget(
            max_documents=spec.get("max_documents"),
            max_characters=spec.get("max_characters")
            or (None if spec.get("max_documents") else DEFAULT_CHARACTERS),
        )
        out.append(
            build_windows(
                name, files, tokenizer, block_size, budget,
                text_column=spec.get("text_column") or "text",
            )
        )  # fmt: skip
    return out


def bits_per_char(model: Any, windows: Any, batch: int = 8) -> float:
    """Summed NLL of the scored targets, in bits per character of the set's text."""
    import torch

    total = 0.0
    for i in range(0, len(windows.input_ids), batch):
        ids = torch.from_numpy(windows.input_ids[i : i + batch])
        att = torch.from_numpy(windows.attention[i : i + batch])
        scored = torch.from_numpy(windows.scored[i : i + batch])[:, 1:]
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=att.long()).logits[:, :-1].float()
        nll = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction="none"
        ).view_as(scored)
        total += float(torch.where(scored, nll, torch.zeros_like(nll)).sum(dtype=torch.float64))
    return total / LN2 / windows.characters if windows.characters else float("nan")


def export(
    source: Path,
    output: Path,
    dtype: str = "bfloat16",
    max_shard_size: str = "2GB",
    eval_sets: dict[str, Any] | None = None,
    block_size: int | None = None,
) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    from worker.training.hf_tokenizer import auto_tokenizer

    if output.exists():
        raise SystemExit(f"--output {output} exists already: remove it or export elsewhere")
    tokenizer = auto_tokenizer(str(source))
    original = AutoModelForCausalLM.from_pretrained(str(source)).eval()
    partial = output.with_name(output.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model = AutoModelForCausalLM.from_pretrained(str(source), dtype=getattr(torch, dtype))
    model.save_pretrained(str(partial), max_shard_size=max_shard_size, safe_serialization=True)
    tokenizer.save_pretrained(str(partial))
    if not (partial / "generation_config.json").is_file():
        # vLLM reads the sampling defaults from it; a model without one gets its config's.
        GenerationConfig.from_model_config(model.config).save_pretrained(str(partial))
    if (source / "README.md").is_file():
        shutil.copy(source / "README.md", partial / "README.md")
    partial.rename(output)

    rows: list[dict[str, Any]] = []
    if eval_sets:
        limit = getattr(original.config, "max_position_embeddings", None) or 1024
        block = min(block_size or 1024, int(limit))
        exported = AutoModelForCausalLM.from_pretrained(str(output)).eval()
        for w in _windows(tokenizer, eval_sets, block):
            before, after = bits_per_char(original, w), bits_per_char(exported, w)
            rows.append(
                {
                    "set": w.name, "characters": w.characters, "tokens": w.tokens,
                    "source_bits_per_char": before, "export_bits_per_char": after,
                    "difference": after - before,
                }
            )  # fmt: skip
    files = sorted(p.name for p in output.iterdir() if p.is_file())
    return {
        "output": str(output),
        "source": str(source),
        "dtype": dtype,
        "files": files,
        "shards": sum(1 for f in files if f.endswith(".safetensors")),
        "size_bytes": sum((output / f).stat().st_size for f in files),
        "eval": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        allow_abbrev=False,
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--source", type=Path, required=True, help="a merged or full-weight dir")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    parser.add_argument("--max_shard_size", default="2GB")
    parser.add_argument("--eval_sets", help="the run's evaluation sets as JSON")
    parser.add_argument("--block_size", type=int)
    parser.add_argument("--json", type=Path, help="write the result here")
    args = parser.parse_args(argv)
    if not (args.source / "config.json").is_file() or not any(args.source.glob("*.safetensors")):
        parser.error(
            f"--source {args.source} holds no HF model weights (config.json + safetensors): "
            "merge a LoRA checkpoint first"
        )
    eval_sets = json.loads(args.eval_sets) if args.eval_sets else None
    result = export(
        args.source, args.output, args.dtype, args.max_shard_size, eval_sets, args.block_size
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
    for row in result["eval"]:
        print(
            f"{row['set']}: {row['source_bits_per_char']:.4f} -> "
            f"{row['export_bits_per_char']:.4f} bits/char ({row['difference']:+.4f})",
            flush=True,
        )
    print(f"wrote {result['output']} ({result['shards']} safetensors files)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
