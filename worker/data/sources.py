"""Data sources: named sets of files with a sampling weight (``--data_sources``), each with the
field or column that holds its text (``text_column``, ``text`` by default)."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from worker.data.documents import find_files
from worker.data.errors import DataError
from worker.data.files import PackOptions
from worker.data.formats import DEFAULT_TEXT_COLUMN

FLAG = "--data_sources"
#: A column name as ``cpt_contract/corpus.py`` accepts it (letters, digits, ``_ . -``).
COLUMN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


@dataclass
class Source:
    """``files`` are read in order; ``flag`` is what an error message names."""

    name: str
    files: list[Path]
    weight: float = 1.0
    flag: str = "--dataset_dir"
    flags: dict[Path, str] = field(default_factory=dict)
    text_column: str = DEFAULT_TEXT_COLUMN
    #: ``replay``: the base model's language, drawn at ``--replay_share`` of the tokens.
    role: str | None = None

    def flag_of(self, path: Path) -> str:
        return self.flags.get(path, self.flag)

    def options(self, opts: PackOptions) -> PackOptions:
        """The run's read/pack options with this source's text column."""
        if opts.text_column == self.text_column:
            return opts
        return replace(opts, text_column=self.text_column)


def check_column(value: object, where: str) -> str:
    if not isinstance(value, str) or not COLUMN.match(value):
        raise DataError(
            f'{where}: "text_column" must be a column name (letters, digits, _ . -), got {value!r}'
        )
    return value


def parse_data_sources(value: str) -> list[dict[str, Any]]:
    """``--data_sources``: a JSON list of ``{"path", "weight", "name", "text_column"}`` (or a .json
    file of it).
    Checks the shape and the weights; the paths are resolved by ``load_sources``."""
    text = value
    if not value.lstrip().startswith("[") and Path(value).is_file():
        try:
            text = Path(value).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"{FLAG}: cannot read {value}: {exc}") from exc
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{FLAG}: not JSON ({exc.msg} at char {exc.pos}); expected "
            '[{"path": "...", "weight": 1.0, "name": "..."}, ...]'
        ) from exc
    if not isinstance(items, list) or not items:
        raise DataError(f'{FLAG}: expected a non-empty JSON list of {{"path", "weight", "name"}}')
    out: list[dict[str, Any]] = []
    names: set[str] = set()
    for i, item in enumerate(items):
        where = f"{FLAG} item {i}"
        if not isinstance(item, dict):
            raise DataError(f'{where}: expected an object {{"path", "weight", "name"}}')
        unknown = set(item) - {"path", "weight", "name", "text_column", "role"}
        if unknown:
            raise DataError(f"{where}: unknown key(s) {sorted(unknown)}")
        path = item.get("path")
        if not isinstance(path, str) or not path:
            raise DataError(f'{where}: "path" (a file or directory) is required')
        weight = item.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, int | float):
            raise DataError(f'{where}: "weight" must be a number, got {weight!r}')
        if not math.isfinite(weight) or weight < 0:
            raise DataError(f'{where}: "weight" must be a finite number >= 0, got {weight!r}')
        name = item.get("name") or Path(path).name or f"source{i}"
        if not isinstance(name, str):
            raise DataError(f'{where}: "name" must be a string')
        if name in names:
            raise DataError(f"{where}: name {name!r} is used twice; names must be unique")
        names.add(name)
        parsed: dict[str, Any] = {"path": path, "weight": float(weight), "name": name}
        if "text_column" in item:
            parsed["text_column"] = check_column(item["text_column"], where)
        if item.get("role") is not None:
            if item["role"] != "replay":
                raise DataError(f'{where}: "role" is "replay" or absent, got {item["role"]!r}')
            parsed["role"] = "replay"
        out.append(parsed)
    check_weights([s["weight"] for s in out], FLAG)
    return out


def check_weights(weights: list[float], flag: str = FLAG) -> None:
    total = sum(weights)
    if not total > 0:
        raise DataError(
            f"{flag}: the weights sum to {total:g}; give at least one source a positive weight"
        )


def load_sources(items: list[dict[str, Any]]) -> list[Source]:
    """Parsed ``--data_sources`` items → sources with their files found."""
    sources = []
    for i, item in enumerate(items):
        path = Path(item["path"])
        if not path.exists():
            raise DataError(f"{FLAG} item {i} ({item['name']}): {path} does not exist")
        files = find_files(path, f"{FLAG} item {i} ({item['name']})")
        flag = f"{FLAG} ({item['name']})"
        column = item.get("text_column", DEFAULT_TEXT_COLUMN)
        sources.append(
            Source(
                item["name"], files, item["weight"], flag, text_column=column, role=item.get("role")
            )
        )
    return sources
