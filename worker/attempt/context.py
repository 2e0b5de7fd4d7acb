"""What every executor of an attempt works with: who the attempt is, where its files are, the
cancel and stop requests, and the preparation of the run dir that both executors share.

``worker.attempt.runner.RunAttempt`` makes one per attempt and hands it to its executor
(``worker.attempt.executors``); nothing here knows where the training runs.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from cpt_contract.protocol import ClaimOut
from cpt_contract.roots import Roots
from cpt_contract.run_paths import RunPaths
from cpt_contract.runconfig.schema import DEEPSPEED_FILES, RunConfig
from cpt_contract.settings import Settings
from worker.attempt import files
from worker.attempt.api_client import WorkerApi
from worker.attempt.environment import DS_CONFIG_DIR, refused_path
from worker.attempt.registry import Registry
from worker.attempt.waker import Waker


class Refused(Exception):
    """The run cannot start on this worker; the message is the user-facing reason."""


def check_paths(config: RunConfig, roots: Roots) -> None:
    """Every path of the config, and every file inside it, must stay under this box's roots
    (checked again here: a link may have appeared since the API checked, and a remote box
    has its own roots)."""
    fields = ((".".join(key), raw) for key, raw in config.path_fields().items())
    if (why := refused_path(fields, roots)) is not None:
        raise Refused(why)


@dataclass
class AttemptContext:
    settings: Settings
    api: WorkerApi
    run_id: str
    attempt: int
    registry: Registry
    paths: RunPaths
    cancel: threading.Event = field(default_factory=threading.Event)
    #: The worker itself is shutting down (SIGTERM to the task, or the registry's stop marker).
    stopping: threading.Event = field(default_factory=threading.Event)
    #: Wakes the local watch loop (a cancel, the worker stopping); set while it watches.
    waker: Waker | None = None
    #: When the training was launched (a rank's failure note older than this is not ours).
    started: float = field(default_factory=time.time)

    @property
    def log_path(self) -> Path:
        return self.paths.log(self.attempt)

    @property
    def cache_dir(self) -> Path:
        # Shared by all runs (as the API's command preview shows): a corpus is tokenized once.
        return self.settings.data_cache_dir

    def note(self, text: str) -> None:
        files.note(self.log_path, text)

    def request_cancel(self) -> None:
        self.cancel.set()
        self.wake()

    def wake(self) -> None:
        """Have the watch loop look now (a cancel or a stop request just arrived)."""
        waker = self.waker  # one read: the watch loop may drop it meanwhile
        if waker is not None:
            waker.wake()

    def cancelled(self) -> bool:
        if not self.cancel.is_set() and self.registry.cancel_requested(self.run_id):
            self.cancel.set()
        return self.cancel.is_set()

    def stop_requested(self) -> bool:
        """The worker is stopping (its shutdown leaves a marker the task polls)."""
        if self.registry.stop_requested(self.run_id):
            self.stopping.set()
        return self.stopping.is_set()

    def write_run_files(self, claim: ClaimOut, *dirs: Path) -> tuple[RunConfig, str | None]:
        """The claimed config, validated, its paths checked against this box's roots, and written
        to the run dir with its DeepSpeed JSON (the path the argv names), after making the
        attempt's directories and ``dirs``."""
        try:
            config = RunConfig.model_validate(claim.config)
        except ValueError as exc:
            raise Refused(f"invalid run config: {str(exc).splitlines()[0]}") from exc
        paths = self.paths
        for d in (paths.output_dir, self.cache_dir, self.log_path.parent, *dirs):
            d.mkdir(parents=True, exist_ok=True)
        paths.config.write_text(json.dumps(config.model_dump(mode="json"), indent=2))
        check_paths(config, self.settings.roots)
        if config.launch.deepspeed == "none":
            return config, None
        name = DEEPSPEED_FILES[config.launch.deepspeed]
        if not (DS_CONFIG_DIR / name).is_file():
            raise Refused(f"DeepSpeed config {name} is missing on this worker")
        shutil.copyfile(DS_CONFIG_DIR / name, paths.ds_config)
        return config, str(paths.ds_config)
