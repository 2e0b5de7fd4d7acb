"""Extending SmolLM2's byte-level BPE with N Russian tokens: ours against the trainers.

Same text, same number of new tokens, each a fresh process timed from start to exit (what a
job pays), rows interleaved in every repetition so a busy machine slows them alike:

- **ours**: ``python -m worker.tokenizer extend`` exactly as the panel's tokenizer job runs it
  (the merge, then fertility of base and extension on the held-out text, the reachability and
  base-id checks, the examples; ``--max_new N``);
- **BpeTrainer**: ``tokenizers``' BpeTrainer training a byte-level BPE from scratch on the same
  file (GPT-2's byte alphabet + N merges), written to a tokenizer.json;
- **SentencePieceTrainer**: a BPE SentencePiece model of the corpus's characters + N pieces
  (``character_coverage`` 1.0, every line, all threads), written to a .model.

Text: Debian ``fortunes-ru`` (3.4 MB of Russian fortunes). Every 20th entry is held out (the
extension's ``--text``); the others make the corpus: pass after pass, each in a new seeded
order, two entries per line, until ``--mb`` megabytes, so no line repeats.

    python bench/tokenizer_extend.py                  # 20 MB, 4,000 tokens, 3 repetitions
    python bench/tokenizer_extend.py --mb 3.46 --reps 5
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from worker import demo_assets  # noqa: E402

FORTUNES_RU = Path("/usr/share/games/fortunes/ru")
CACHE = Path(os.environ.get("CPT_TEST_CACHE", Path.home() / ".cache" / "cpt-panel-tests"))

BPE_TRAINER = """
import sys
from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers
corpus, n_new, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
tok = Tokenizer(models.BPE())
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tok.decoder = decoders.ByteLevel()
alphabet = pre_tokenizers.ByteLevel.alphabet()
trainer = trainers.BpeTrainer(
    vocab_size=len(alphabet) + n_new, initial_alphabet=alphabet, show_progress=False
)
tok.train([corpus], trainer)
tok.save(out)
print(tok.get_vocab_size())
"""

SP_TRAINER = """
import os, sys
import sentencepiece as spm
corpus, n_new, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
chars = set(open(corpus, encoding="utf-8").read()) - {"\\n"}
spm.SentencePieceTrainer.train(
    input=corpus, model_prefix=out, model_type="bpe", vocab_size=len(chars) + 3 + n_new,
    character_coverage=1.0, input_sentence_size=0, max_sentence_length=1 << 16,
    num_threads=os.cpu_count(), minloglevel=2,
)
print(spm.SentencePieceProcessor(model_file=out + ".model").get_piece_size())
"""


def entries() -> list[str]:
    if not FORTUNES_RU.is_dir():
        sys.exit(f"{FORTUNES_RU} is missing: apt-get install fortunes-ru")
    out: list[str] = []
    for path in sorted(FORTUNES_RU.iterdir()):
        if path.suffix in (".dat", ".u8") or path.is_symlink() or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        out += [" ".join(e.split()) for e in text.split("\n%\n") if e.strip()]
    return out


def write_texts(root: Path, megabytes: float) -> tuple[Path, Path]:
    all_entries = entries()
    held = all_entries[::20]
    train = [e for i, e in enumerate(all_entries) if i % 20]
    rng = random.Random(0)
    lines: list[str] = []
    size, target = 0, int(megabytes * 1_000_000)
    while size < target:
        order = train[:]
        rng.shuffle(order)
        for a, b in zip(order[0::2], order[1::2], strict=False):
            lines.append(f"{a} {b}")
            size += len(lines[-1].encode("utf-8")) + 1
            if size >= target:
                break
    corpus, held_out = root / "ru_corpus.txt", root / "ru.txt"
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    held_out.write_text("\n".join(held) + "\n", encoding="utf-8")
    return corpus, held_out


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str]) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (all threads, user + system) and stdout of a process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cpu, started = _children_cpu(), time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
    took, cpu = time.perf_counter() - started, _children_cpu() - cpu
    if proc.returncode != 0:
        sys.exit(f"{argv[:4]} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return took, cpu, proc.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=float, default=20.0, help="corpus size in megabytes")
    parser.add_argument("--new", type=int, default=4000, help="new tokens")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    base = demo_assets.ensure_smollm2(CACHE)
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="bench-tok-") as tmp_name:
        tmp = Path(tmp_name)
        corpus, held = write_texts(tmp, args.mb)
        n_bytes = corpus.stat().st_size
        times: dict[str, list[float]] = {"ours": [], "BpeTrainer": [], "SentencePieceTrainer": []}
        cpus: dict[str, list[float]] = {name: [] for name in times}
        result: dict[str, object] = {}
        sizes: dict[str, int] = {}
        for rep in range(args.reps):
            out = tmp / f"ext{rep}"
            took, cpu, _ = timed(
                [py, "-m", "worker.tokenizer", "extend", f"--base={base}", "--input", str(corpus),
                 "--max_new", str(args.new), "--text", str(held), "--output", str(out),
                 "--json", str(tmp / "result.json")]
            )  # fmt: skip
            times["ours"].append(took)
            cpus["ours"].append(cpu)
            result = json.loads((tmp / "result.json").read_text(encoding="utf-8"))
            took, cpu, stdout = timed(
                [py, "-c", BPE_TRAINER, str(corpus), str(args.new), str(tmp / f"bpe{rep}.json")]
            )
            times["BpeTrainer"].append(took)
            cpus["BpeTrainer"].append(cpu)
            sizes["BpeTrainer"] = int(stdout.split()[-1])
            took, cpu, stdout = timed(
                [py, "-c", SP_TRAINER, str(corpus), str(args.new), str(tmp / f"sp{rep}")]
            )
            times["SentencePieceTrainer"].append(took)
            cpus["SentencePieceTrainer"].append(cpu)
            sizes["SentencePieceTrainer"] = int(stdout.split()[-1])
            print(f"rep {rep + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()))
    ref = min(times["BpeTrainer"])
    rows = {
        "ours": f"{result['base_vocab']:,} + {result['added']:,} "
        f"({result['unreachable_count']} unreachable, base ids unchanged: "
        f"{result['base_ids_unchanged']})",
        "BpeTrainer": f"{sizes['BpeTrainer']:,} (256 bytes + {args.new:,} merges)",
        "SentencePieceTrainer": f"{sizes['SentencePieceTrainer']:,} (characters + 3 special "
        f"+ {args.new:,})",
    }
    print(
        f"\n{n_bytes / 1e6:.2f} MB of Russian ({n_bytes:,} bytes), {args.new:,} new tokens, "
        f"{args.reps} repetitions, {os.cpu_count()} CPUs\n"
    )
    ref_cpu = min(cpus["BpeTrainer"])
    print(
        "| row | wall s, best | wall s, median | wall / BpeTrainer | CPU s, best "
        "| CPU / BpeTrainer | vocabulary |"
    )
    print("|---|--:|--:|--:|--:|--:|---|")
    for name, values in times.items():
        print(
            f"| {name} | {min(values):.2f} | {statistics.median(values):.2f} | "
            f"{min(values) / ref:.2f} | {min(cpus[name]):.2f} | {min(cpus[name]) / ref_cpu:.2f} "
            f"| {rows[name]} |"
        )
    fert = {r["label"]: r for r in result.get("fertility", [])}  # type: ignore[attr-defined]
    if "ru" in fert:
        ru = fert["ru"]
        print(
            f"\nheld-out Russian, tokens per word: {ru['base']['tokens_per_word']:.3f} -> "
            f"{ru['extended']['tokens_per_word']:.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
