"""The process around a run: logging, a launcher-less DeepSpeed environment, a clean exit."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import TYPE_CHECKING

import datasets
import torch
import transformers

from worker.exit_codes import EXIT_OK

if TYPE_CHECKING:  # arguments.py imports this module
    from worker.training.arguments import PretrainArguments


def single_process_env(deepspeed: bool) -> None:
    """``python pretrain.py --deepspeed ...`` without a launcher: DeepSpeed would look for MPI."""
    if not deepspeed:
        return
    if "RANK" in os.environ or "LOCAL_RANK" in os.environ:
        return
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    os.environ.update({"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "LOCAL_WORLD_SIZE": "1"})
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(port))


def finish_distributed(code: int) -> None:
    """A barrier then destroy_process_group: without it DeepSpeed+gloo sometimes aborts at exit."""
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()):
        return
    if code == EXIT_OK:
        with contextlib.suppress(Exception):
            dist.barrier()
    with contextlib.suppress(Exception):
        dist.destroy_process_group()


def setup_logging(args: PretrainArguments) -> None:
    level = logging.DEBUG if args.debug_mode else logging.INFO
    if args.process_index != 0:
        level = logging.WARNING
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        level=level,
        stream=sys.stdout,
        force=True,
    )
    transformers.utils.logging.set_verbosity(
        level if args.debug_mode else max(level, logging.WARNING)
    )
    datasets.utils.logging.set_verbosity(logging.WARNING)
    if not args.debug_mode:
        datasets.disable_progress_bars()
