"""Per-rank safety nets, set first thing in ``pretrain.main``.

- PR_SET_PDEATHSIG: torchrun starts each rank in its own session, so a rank whose torchrun
  died would live on (re-parented to pid 1, holding its GPU). SIGKILL on the launcher's death
  makes it go too; a SIGSTOPped rank dies as well (SIGTERM would stay pending).
- faulthandler on SIGUSR1: the worker's stall detection asks every rank for its Python stacks;
  they land in the attempt log (stderr).
"""

from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_launcher() -> None:
    """Only under torchrun (``TORCHELASTIC_RUN_ID``): a plain ``python pretrain.py`` keeps
    the usual behaviour. Linux only; elsewhere a no-op."""
    if "TORCHELASTIC_RUN_ID" not in os.environ:
        return
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the launcher died before the prctl took effect
        os._exit(1)


def dump_stacks_on_sigusr1() -> None:
    with contextlib.suppress(ValueError, AttributeError, RuntimeError):
        faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)


def install() -> None:
    die_with_launcher()
    dump_stacks_on_sigusr1()
