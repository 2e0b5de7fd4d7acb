"""What ``training.extra_args`` may pass to ``pretrain.py``: an allow-list derived from the schema.

``extra_args`` is appended to the argv, and argparse lets the last occurrence of a flag win, so an
unchecked list could move ``--output_dir`` or ``--dataset_dir`` outside the allowed roots. The
rule is therefore an allow-list, never a deny-list:

- a flag is allowed only if it is one of ``CANDIDATES`` (scalar ``TrainingArguments`` knobs that
  take no path), and
- every flag the schema's fields produce (derived from their ``argv`` metadata, so a new schema
  field is excluded automatically), the panel's own ``PANEL_FLAGS`` and the worker's
  ``CONTEXT_FLAGS`` are taken out of it, and
- a name that looks like a path (``dir``, ``path``, ``file``, ``config``, ``cache``, ``hub`` ...)
  is refused even if someone adds it to ``CANDIDATES``.

Each flag may appear once; a value may not look like a flag (argparse would read it as one, and
its prefix matching would turn ``--output_d`` into ``--output_dir``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel


@dataclass(frozen=True)
class Value:
    """What one flag's value may be: a number within bounds, a boolean, or one of a few words."""

    kind: Literal["int", "float", "bool", "word"]
    low: float = 0
    high: float = 0
    words: tuple[str, ...] = ()

    def problem(self, text: str) -> str | None:
        if self.kind == "bool":
            return None if text in ("True", "False", "true", "false") else "True or False"
        if self.kind == "word":
            ok = text in self.words if self.words else bool(_WORD.match(text))
            return None if ok else ("one of " + ", ".join(self.words) if self.words else "a word")
        try:
            number = int(text) if self.kind == "int" else float(text)
        except ValueError:
            return f"a{'n integer' if self.kind == 'int' else ' number'}"
        if not (self.low <= number <= self.high) or number != number:
            return f"a{'n integer' if self.kind == 'int' else ' number'} from {self.low:g} to {self.high:g}"
        return None


_BOOL = Value("bool")
_LOG_LEVELS = ("debug", "info", "warning", "error", "critical", "passive")
#: Letters, digits and ``_.=,`` (an optimizer's name or its ``a=1,b=2`` arguments).
_WORD = re.compile(r"^[A-Za-z0-9_.=,]{1,128}$")

#: ``TrainingArguments`` flags that take a scalar (number, bool, choice, short string), no path,
#: each with the values it may take: a pass-through number is bounded like a schema field.
CANDIDATES: dict[str, Value] = {
    "--adam_beta1": Value("float", 0, 0.9999999),
    "--adam_beta2": Value("float", 0, 0.9999999),
    "--adam_epsilon": Value("float", 1e-12, 1),
    "--optim": Value("word"),
    "--optim_args": Value("word"),
    "--warmup_steps": Value("float", 0, 1e9),
    "--label_smoothing_factor": Value("float", 0, 1),
    "--neftune_noise_alpha": Value("float", 0, 1000),
    "--eval_accumulation_steps": Value("int", 1, 1_000_000),
    "--eval_delay": Value("float", 0, 1e9),
    "--dataloader_num_workers": Value("int", 0, 64),
    "--dataloader_pin_memory": _BOOL,
    "--dataloader_drop_last": _BOOL,
    "--dataloader_persistent_workers": _BOOL,
    "--data_seed": Value("int", 0, 2**32 - 1),
    "--full_determinism": _BOOL,
    "--tf32": _BOOL,
    "--torch_compile": _BOOL,
    "--torch_empty_cache_steps": Value("int", 1, 1_000_000_000),
    "--ddp_bucket_cap_mb": Value("int", 1, 100_000),
    "--ddp_broadcast_buffers": _BOOL,
    "--log_level": Value("word", words=_LOG_LEVELS),
    "--log_level_replica": Value("word", words=_LOG_LEVELS),
    "--disable_tqdm": _BOOL,
    "--skip_memory_metrics": _BOOL,
    "--save_only_model": _BOOL,
    "--average_tokens_across_devices": _BOOL,
    "--include_num_input_tokens_seen": _BOOL,
}

#: Parts of a flag name that mean it takes a path (refused whatever the list says).
_PATHLIKE = re.compile(
    r"dir|path|file|config|cache|hub|deepspeed|resume|fsdp|output|logging_|report|root"
)
#: A value token: not a flag (a negative number is fine), bounded, no control characters.
_NUMBER = re.compile(r"^-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")
MAX_ITEMS = 64
MAX_ITEM_LENGTH = 256


def _field_flags(model: type[BaseModel]) -> set[str]:
    """Every flag a section's fields can put in the argv, from their ``argv`` metadata."""
    flags: set[str] = set()
    for name, info in model.model_fields.items():
        extra: dict[str, Any] = (
            info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        )
        style = extra.get("argv")
        if style == "none":
            continue
        flags.add(f"--{name}")
        flags.update(f for f in extra.get("argv_with", []) if str(f).startswith("--"))
        if isinstance(style, dict):
            for mapped in style.values():
                flags.update(f for f in mapped if str(f).startswith("--"))
    return flags


def schema_set_flags(sections: list[type[BaseModel]]) -> frozenset[str]:
    """The flags the schema's fields set: never allowed again through ``extra_args``."""
    out: set[str] = set()
    for section in sections:
        out |= _field_flags(section)
    return frozenset(out)


@cache
def allowed_flags() -> frozenset[str]:
    """``CANDIDATES`` minus everything the schema, the panel and the worker set."""
    taken = schema_set_flags(_sections()) | panel_flags() | _context_flags()
    return frozenset(f for f in CANDIDATES if f not in taken and not _PATHLIKE.search(f[2:]))


# Imported when first used: schema.py validates with this module, and argv.py imports schema.py.
def _sections() -> list[type[BaseModel]]:
    from cpt_contract.runconfig.schema import RunConfig

    return [f.annotation for f in RunConfig.model_fields.values() if isinstance(f.annotation, type)]


def panel_flags() -> frozenset[str]:
    from cpt_contract.runconfig.argv import PANEL_FLAGS

    return frozenset(f for f in PANEL_FLAGS if f.startswith("--"))


def _context_flags() -> frozenset[str]:
    from cpt_contract.runconfig.argv import CONTEXT_FLAGS

    return frozenset(CONTEXT_FLAGS)


def _why_not(flag: str) -> str:
    if flag in panel_flags() or flag in _context_flags():
        return "the panel sets it itself"
    if flag in schema_set_flags(_sections()):
        return f"it is a schema field: set {flag[2:]} in the form or the config instead"
    if _PATHLIKE.search(flag[2:]):
        return "it names a path, and paths are accepted only in the path fields"
    return "it is not on the allow-list"


def check_extra_args(items: list[str]) -> list[str]:
    """The items unchanged, or ``ValueError`` naming the first bad flag and the fix."""
    if len(items) > MAX_ITEMS:
        raise ValueError(f"at most {MAX_ITEMS} items")
    allowed = allowed_flags()
    seen: set[str] = set()
    pending: str | None = None  # a flag whose value may come as the next item
    for item in items:
        if len(item) > MAX_ITEM_LENGTH or not item.isprintable():
            raise ValueError(
                f"{item[:40]!r}: each item is at most {MAX_ITEM_LENGTH} printable characters"
            )
        is_flag = item.startswith("-") and not _NUMBER.match(item)
        if not is_flag:
            if pending is None:
                raise ValueError(f"{item!r} is not a flag: items are '--flag' then its value")
            _check_value(pending, item)
            pending = None
            continue
        if pending is not None:
            raise ValueError(f"flag {pending!r} needs a value: '{pending}', then the value")
        flag, glued, value = item.partition("=")
        if flag not in allowed:
            raise ValueError(
                f"flag {flag!r} is not allowed in extra_args: {_why_not(flag)}. "
                f"Allowed: {', '.join(sorted(allowed))}"
            )
        if flag in seen:
            raise ValueError(f"flag {flag!r} is given twice in extra_args: keep one")
        seen.add(flag)
        # ``--flag=value`` carries its value; ``--flag`` is followed by it (a switch too: some
        # of TrainingArguments' booleans take no bare form).
        if glued:
            _check_value(flag, value)
            pending = None
        else:
            pending = flag
    if pending is not None:
        raise ValueError(f"flag {pending!r} needs a value: '{pending}', then the value")
    return items


def _check_value(flag: str, value: str) -> None:
    if problem := CANDIDATES[flag].problem(value):
        raise ValueError(f"{flag} {value!r}: the value must be {problem}")
