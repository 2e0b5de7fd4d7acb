#!/usr/bin/env python3
"""Build-time check that an image holds exactly the locked Python packages.

    check_image.py --lock /tmp/requirements.lock --project cpt-panel --extras api
    check_image.py --lock /tmp/requirements.lock --project cpt-panel --extras api,train --torch-build cuda

Walks the installed project's dependency closure (its requirements with the given extras,
recursively) and fails if any installed member's version differs from the lock's
``name==version`` line. Local version labels are ignored (the base image's
``torch 2.13.0+cu128`` matches a lock's ``torch==2.13.0+cpu``: same release, other build).
``--torch-build cuda`` (or ``--cuda``) also requires a CUDA build of torch, ``--torch-build cpu``
a CPU build (the base that ``make test-compose`` makes); ``--no-torch`` requires torch to be
absent.
Standard library only; run by the Dockerfiles and by tests/test_dockerfiles.py.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import re
import sys
from pathlib import Path

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?")
_EXTRA_MARKER = re.compile(r"""extra\s*==\s*['"]([^'"]+)['"]""")
#: Installers that ``pip freeze`` leaves out of a lock: checked only when the lock pins them.
BOOTSTRAP = {"pip", "setuptools", "wheel", "distribute"}
#: Comes with the CUDA base image: torch is compared by release, its CUDA wheels not at all.
BASE_IMAGE = re.compile(r"^(triton|nvidia-.*|pytorch-triton.*)$")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def public(version: str) -> str:
    return version.split("+", 1)[0]


def read_lock(path: Path) -> dict[str, str]:
    """``name==version`` lines (comments, ``-e`` and option lines are skipped)."""
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line)
        if m:
            pins[normalize(m.group(1))] = m.group(2)
    return pins


def _installed(name: str) -> md.Distribution | None:
    try:
        return md.distribution(name)
    except md.PackageNotFoundError:
        return None


def closure(project: str, extras: set[str]) -> dict[str, str]:
    """normalized name -> installed version, for the project and everything it pulls in."""
    seen: dict[str, str] = {}
    todo: list[tuple[str, set[str]]] = [(project, extras)]
    done_extras: dict[str, set[str]] = {}
    while todo:
        name, want = todo.pop()
        key = normalize(name)
        dist = _installed(name)
        if dist is None:
            continue  # not installed here (e.g. a marker excluded it): nothing to compare
        if key in done_extras and want <= done_extras[key]:
            continue
        done_extras[key] = done_extras.get(key, set()) | want
        seen[key] = dist.version
        if key == "torch":
            continue  # torch's own dependencies are the base image's business
        for req in dist.requires or []:
            spec, _, marker = req.partition(";")
            m = _NAME.match(spec)
            if not m:
                continue
            needed = set(_EXTRA_MARKER.findall(marker))
            if needed and not (needed & done_extras[key]):
                continue
            sub_extras = {e.strip() for e in (m.group(2) or "").split(",") if e.strip()}
            todo.append((m.group(1), sub_extras))
    return seen


def check(
    lock: Path, project: str, extras: set[str], torch_build: str | None, no_torch: bool
) -> list[str]:
    pins = read_lock(lock)
    problems = []
    members = closure(project, extras)
    if normalize(project) not in members:
        problems.append(f"{project} is not installed")
    for key, version in sorted(members.items()):
        if key == normalize(project):
            continue
        if BASE_IMAGE.match(key) or (key in BOOTSTRAP and key not in pins):
            continue
        if key not in pins:
            problems.append(f"{key} {version} is installed but not in the lock")
        elif public(pins[key]) != public(version):
            problems.append(f"{key} {version} installed, lock says {pins[key]}")
    torch = _installed("torch")
    if no_torch and torch is not None:
        problems.append(f"torch {torch.version} is installed in an image that must not have it")
    if torch_build:
        if torch is None:
            problems.append("torch is not installed")
        else:
            import torch as t  # only in the worker image

            built = "cuda" if t.version.cuda else "cpu"
            if built != torch_build:
                problems.append(f"torch {t.__version__} is a {built} build, not {torch_build}")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lock", type=Path, required=True)
    ap.add_argument("--project", default="cpt-panel")
    ap.add_argument("--extras", default="")
    ap.add_argument("--torch-build", choices=("cuda", "cpu"), help="torch must be this build")
    ap.add_argument("--cuda", action="store_true", help="the same as --torch-build cuda")
    ap.add_argument("--no-torch", action="store_true", help="torch must be absent")
    args = ap.parse_args(argv)
    extras = {e.strip() for e in args.extras.split(",") if e.strip()}
    torch_build = "cuda" if args.cuda else args.torch_build
    problems = check(args.lock, args.project, extras, torch_build, args.no_torch)
    for p in problems:
        print(f"check_image: {p}", file=sys.stderr)
    if problems:
        return 1
    print(f"check_image: {args.project}[{args.extras}] matches {args.lock}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
