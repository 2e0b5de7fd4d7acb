"""A small multiple-choice task in lm-evaluation-harness's YAML format over local JSONL, in two
languages, built from package-shipped text (the UDHR samples of ``gflanguages``): each item is
the start of a real sentence and four endings, its own and three other sentences' (so chance is
1/4). A language model that knows the language picks its own ending more often than chance.
Sentences: the UDHR samples of ``gflanguages``, then the dialogue lines of ``chatterbot-corpus``."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

from worker import demo_assets

CHOICES = 4
MAX_ITEMS = 40
#: chatterbot-corpus's folder per UDHR language id.
DIALOGUES = {"en_Latn": "english", "ru_Cyrl": "russian"}
#: The task's YAML: the harness's format; data files relative to the YAML's folder.
TASK_YAML = """task: {task}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{context}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: label
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
"""


def sentences(lang_id: str, min_words: int = 7) -> list[str]:
    seen: set[str] = set()
    out = []
    texts = demo_assets.udhr_samples(lang_id) + demo_assets.chatterbot_dialogues(DIALOGUES[lang_id])
    for sample in texts:
        for part in re.split(r"(?<=[.;:!?])\s+|\n", sample):
            part = part.strip()
            if len(part.split()) >= min_words and part not in seen:
                seen.add(part)
                out.append(part)
    return out[:MAX_ITEMS]


def items(lang_id: str, seed: int = 0) -> list[dict[str, object]]:
    rng = random.Random(seed)
    cut = []
    for s in sentences(lang_id):
        words = s.split()
        k = max(3, int(len(words) * 0.6))
        cut.append((" ".join(words[:k]), " ".join(words[k:])))
    out: list[dict[str, object]] = []
    for i, (context, ending) in enumerate(cut):
        others = [e for j, (_, e) in enumerate(cut) if j != i and e != ending]
        choices = [*rng.sample(others, CHOICES - 1), ending]
        rng.shuffle(choices)
        out.append({"context": context, "choices": choices, "label": choices.index(ending)})
    return out


def write_task(root: Path, name: str, lang_id: str) -> Path:
    """``root/<name>.yaml`` and ``root/<name>.jsonl``; returns the YAML."""
    root.mkdir(parents=True, exist_ok=True)
    data = root / f"{name}.jsonl"
    with open(data, "w", encoding="utf-8") as fh:
        for item in items(lang_id):
            fh.write(json.dumps(item, ensure_ascii=False) + "\n")
    yaml_path = root / f"{name}.yaml"
    yaml_path.write_text(TASK_YAML.format(task=name, data=data.name), encoding="utf-8")
    return yaml_path


def write_two_languages(root: Path) -> dict[str, Path]:
    """English and Russian, one task each, in one folder."""
    return {
        "en": write_task(root, "udhr_mc_en", "en_Latn"),
        "ru": write_task(root, "udhr_mc_ru", "ru_Cyrl"),
    }
