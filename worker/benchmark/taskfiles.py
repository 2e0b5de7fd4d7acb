"""A user's task files in lm-evaluation-harness's YAML format, made safe to run on the worker.

What is refused, and why:
- ``!function`` (and every other Python tag): it imports and runs code from the task's folder;
  a task here is data and Jinja templates only (the templates render in a sandbox: harness.py).
- a dataset that is not local: a task file reads local files (``dataset_path`` json, csv,
  parquet, text or arrow with ``data_files``, or a directory); the harness's own tasks, which
  download theirs, are named as tasks instead.
- a data file, an ``include`` or a dataset directory outside the allowed roots
  (``cpt_contract/roots.py``, the worker's roots as handed down in ``CPT_READ_*``).
Relative paths are relative to the YAML file's folder (the harness itself would take them from
the current directory).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from cpt_contract.roots import PathRefused, Roots, check_user_path

#: ``dataset_path`` values that read local files through ``datasets``' packaged builders.
LOCAL_BUILDERS = frozenset({"json", "csv", "parquet", "text", "arrow"})
#: Keys that would run code or fetch a dataset's own loading script.
REFUSED_KEYS = frozenset({"custom_dataset", "trust_remote_code"})
MAX_INCLUDE_DEPTH = 4


class TaskFileError(ValueError):
    """A task file that cannot be run as given; the message names the file and the fix."""


class _Loader(yaml.SafeLoader):
    """SafeLoader that names the tag it refuses (``!function utils.x``) instead of a stack."""


def _refuse_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    raise TaskFileError(
        f"{loader.name}: the tag !{suffix} runs Python from the task's folder, which the panel "
        "does not do; write the prompt, choices and target as Jinja templates "
        "(doc_to_text, doc_to_choice, doc_to_target)"
    )


_Loader.add_multi_constructor("!", _refuse_tag)
_Loader.add_multi_constructor("tag:yaml.org,2002:python/", _refuse_tag)


def task_yamls(path: Path) -> list[Path]:
    """A file, or every ``*.yaml``/``*.yml`` directly in a directory (sorted)."""
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    return [path]


def _checked(raw: str, base: Path, roots: Roots | None, what: str) -> str:
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = base / path
    if roots is None:
        return str(path.resolve())
    try:
        return str(check_user_path(str(path), roots))
    except PathRefused as exc:
        raise TaskFileError(f"{what}: {exc}") from None


def _read(path: Path, roots: Roots | None, depth: int = 0) -> dict[str, Any]:
    if depth > MAX_INCLUDE_DEPTH:
        raise TaskFileError(f"{path}: includes nest deeper than {MAX_INCLUDE_DEPTH}")
    with open(path, encoding="utf-8") as fh:
        loader = _Loader(fh)
        loader.name = str(path)
        try:
            data = loader.get_single_data()
        except yaml.YAMLError as exc:
            raise TaskFileError(f"{path}: not valid YAML ({exc})") from None
        finally:
            loader.dispose()
    if not isinstance(data, dict):
        raise TaskFileError(f"{path}: a task file is a mapping (task:, dataset_path:, ...)")
    include = data.pop("include", None)
    if include is None:
        return data
    if not isinstance(include, str):
        raise TaskFileError(f"{path}: include names one YAML file")
    parent = _read(
        Path(_checked(include, path.parent, roots, f"{path}: include")), roots, depth + 1
    )
    return {**parent, **data}


def _local_files(value: Any, base: Path, roots: Roots | None, what: str) -> Any:
    if isinstance(value, str):
        return _checked(value, base, roots, what)
    if isinstance(value, list):
        return [_local_files(v, base, roots, what) for v in value]
    if isinstance(value, dict):
        return {k: _local_files(v, base, roots, f"{what}.{k}") for k, v in value.items()}
    raise TaskFileError(f"{what}: a path, a list of paths or a mapping of split to paths")


def load_task_file(path: Path, roots: Roots | None) -> dict[str, Any]:
    """The task's config as the harness takes it (a dict), every path absolute and checked."""
    config = _read(path, roots)
    name = config.get("task")
    if not isinstance(name, str) or not name.strip():
        raise TaskFileError(
            f"{path}: no 'task:' name (a group file is not supported: one task a file)"
        )
    for key in REFUSED_KEYS & config.keys():
        raise TaskFileError(f"{path}: '{key}' runs code; remove it")
    dataset = config.get("dataset_path")
    kwargs = dict(config.get("dataset_kwargs") or {})
    for key in REFUSED_KEYS & kwargs.keys():
        raise TaskFileError(f"{path}: dataset_kwargs.{key} runs code; remove it")
    if dataset in LOCAL_BUILDERS:
        if "data_files" not in kwargs:
            raise TaskFileError(
                f"{path}: dataset_path {dataset} needs dataset_kwargs.data_files (the local files)"
            )
        kwargs["data_files"] = _local_files(
            kwargs["data_files"], path.parent, roots, f"{path}: data_files"
        )
        if "data_dir" in kwargs:
            kwargs["data_dir"] = _local_files(
                kwargs["data_dir"], path.parent, roots, f"{path}: data_dir"
            )
    elif isinstance(dataset, str) and (dataset.startswith(("/", ".", "~"))):
        config["dataset_path"] = _checked(dataset, path.parent, roots, f"{path}: dataset_path")
        if not Path(config["dataset_path"]).is_dir():
            raise TaskFileError(f"{path}: dataset_path {dataset} is not a directory")
    else:
        raise TaskFileError(
            f"{path}: dataset_path {dataset!r} is not local; use one of "
            f"{', '.join(sorted(LOCAL_BUILDERS))} with dataset_kwargs.data_files, or a directory "
            "(the harness's own tasks are named as tasks, not as files)"
        )
    config["dataset_kwargs"] = kwargs
    return config


def load_task_files(paths: list[Path], roots: Roots | None) -> list[dict[str, Any]]:
    configs: list[dict[str, Any]] = []
    seen: dict[str, Path] = {}
    for given in paths:
        files = task_yamls(given)
        if not files:
            raise TaskFileError(f"{given}: no .yaml task files in this folder")
        for file in files:
            config = load_task_file(file, roots)
            if (other := seen.get(config["task"])) is not None:
                raise TaskFileError(f"{file}: task {config['task']!r} is also defined in {other}")
            seen[config["task"]] = file
            configs.append(config)
    return configs
