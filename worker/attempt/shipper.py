"""Tail a run's events.jsonl and log file and ship new data to the API in batches.

Offsets advance only after the API acknowledged a batch, so a failed POST is simply retried
from the same place (the API is idempotent on event seq and log byte offset).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from cpt_contract.protocol import CancelAnswer
from cpt_contract.run_paths import RunPaths
from worker.attempt.api_client import ApiUnavailable, Conflict, WorkerApi

log = logging.getLogger(__name__)

#: Log bytes ship at most this often while a run trains (events every tick): a training
#: process prints progress many times a second, and one log POST per 0.1 s tick was about half
#: of what the panel cost in CPU during a run. 0.5 s is immediate enough for a reader.
LOG_INTERVAL = 0.5
#: ... unless this much log is waiting.
LOG_EAGER_BYTES = 64 * 1024
#: Upper bound of one log POST, so a burst of output never makes a huge request.
MAX_LOG_CHUNK = 256 * 1024
MAX_EVENTS_PER_BATCH = 500
#: A quiet run (imports, loading, a long step) asks the API this often whether it was cancelled:
#: each ask is a request; at 0.5 s they were a fifth of the panel's CPU during a tiny run, and
#: a cancel in those phases now lands within a second.
KEEPALIVE_SECONDS = 1.0
#: The acknowledged offsets are written to disk at most this often while shipping (and always
#: by ``drain``): a crash loses at most this much of the record, and the next attempt then
#: re-ships those events and log bytes, which the API stores once (by seq, by offset).
STATE_SAVE_SECONDS = 1.0


def _complete_utf8(data: bytes) -> bytes:
    """``data`` without a trailing, incomplete UTF-8 sequence (it ships with the next batch)."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0b1100_0000 == 0b1000_0000:
            continue  # continuation byte: keep looking for the lead byte
        if byte & 0b1000_0000 == 0:
            return data  # ASCII: complete
        need = 2 if byte >> 5 == 0b110 else 3 if byte >> 4 == 0b1110 else 4
        return data if back >= need else data[:-back]
    return data


class RunShipper:
    """Ships one attempt's events and log; ``ship_once`` is called by a thread or at the end."""

    def __init__(
        self,
        api: WorkerApi,
        run_id: str,
        attempt: int,
        events_path: Path,
        log_path: Path,
        *,
        events_offset: int = 0,
        log_offset: int = 0,
        events_until: int | None = None,
        state_path: Path | None = None,
        on_cancel: Callable[[], None] | None = None,
        keepalive: Callable[[], CancelAnswer] | None = None,
        keepalive_seconds: float = KEEPALIVE_SECONDS,
        log_interval: float = LOG_INTERVAL,
    ) -> None:
        self.api, self.run_id, self.attempt = api, run_id, attempt
        self.events_path, self.log_path = events_path, log_path
        #: Byte offset in events.jsonl: earlier attempts' lines are not re-shipped.
        self.events_offset = events_offset
        self.log_offset = log_offset
        #: Where this attempt's lines end in the shared events.jsonl (leftovers of an old attempt).
        self.events_until = events_until
        #: Acknowledged offsets are saved here, so a later attempt can ship what a crashed
        #: worker never did (see ``ship_leftovers``).
        self.state_path = state_path
        self.on_cancel = on_cancel
        #: Called when nothing was shipped for ``keepalive_seconds``: a quiet run (loading, a long
        #: step) must still learn of a cancel quickly, not only at the next heartbeat.
        self.keepalive, self.keepalive_seconds = keepalive, keepalive_seconds
        self._last_contact = time.monotonic()
        self.end_event: dict[str, Any] | None = None
        #: Progress seen in the shipped events (the worker's stall detection reads these).
        self.last_step: int | None = None
        #: The last step trained (a log or a checkpoint): what the retry policy calls progress.
        self.trained_step: int | None = None
        self.progress_at = time.monotonic()
        self.step_seconds: list[float] = []
        self.events_shipped = 0
        self.last_error: str | None = None
        self._lock = threading.Lock()
        self.log_interval = log_interval
        self._last_log = 0.0
        self._saved_at = 0.0
        self._unsaved = False

    def _note(self, answer: CancelAnswer) -> None:
        self._last_contact = time.monotonic()
        if answer.cancel_requested and self.on_cancel is not None:
            self.on_cancel()

    def _ship_events(self) -> bool:
        try:
            size = self.events_path.stat().st_size
        except FileNotFoundError:
            return False
        if size <= self.events_offset:
            return False  # nothing new: no open, no read
        with open(self.events_path, "rb") as f:
            f.seek(self.events_offset)
            limit = (
                -1 if self.events_until is None else max(0, self.events_until - self.events_offset)
            )
            data = f.read(limit) if limit != 0 else b""
        end = data.rfind(b"\n") + 1  # only whole lines; a half-written one waits
        if end == 0:
            return False
        events: list[dict[str, Any]] = []
        consumed = 0
        for raw in data[:end].splitlines(keepends=True):
            if len(events) >= MAX_EVENTS_PER_BATCH:
                break
            consumed += len(raw)
            line = raw.strip()
            if not line:
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                log.warning(
                    "run %s: skipping a malformed events.jsonl line: %r", self.run_id, line[:200]
                )
                continue
            events.append(event)
        if events:
            # Log bytes waiting ride along, whatever the log interval: no request of their own.
            chunk = self._log_chunk()
            along = None if chunk is None else (self.log_offset, chunk.decode("utf-8", "replace"))
            answer = self.api.events(self.run_id, self.attempt, events, along)
            self._note(answer)
            if chunk is not None and answer.log_accepted_until is not None:
                self._logged(chunk, answer.log_accepted_until)
            self.events_shipped += len(events)
            for event in events:
                if event.get("kind") == "end":
                    self.end_event = event
                self._progress(event)
        self.events_offset += consumed
        return True

    def _progress(self, event: dict[str, Any]) -> None:
        step = event.get("step")
        if event.get("kind") not in ("start", "log", "checkpoint", "eval") or not isinstance(
            step, int
        ):
            return
        now = time.monotonic()
        if event.get("kind") in ("log", "checkpoint") and step > 0:
            self.trained_step = step if self.trained_step is None else max(self.trained_step, step)
        if self.last_step is not None and step > self.last_step and event.get("kind") == "log":
            self.step_seconds.append((now - self.progress_at) / (step - self.last_step))
            del self.step_seconds[:-200]
        if self.last_step is None or step > self.last_step or event.get("kind") == "start":
            self.last_step, self.progress_at = step, now

    def _log_waiting(self) -> int:
        try:
            return self.log_path.stat().st_size - self.log_offset
        except FileNotFoundError:
            return 0

    def _log_chunk(self) -> bytes | None:
        """The next log bytes to ship (whole UTF-8 characters, at most MAX_LOG_CHUNK), if any."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self.log_offset)
                data = f.read(MAX_LOG_CHUNK)
        except FileNotFoundError:
            return None
        return _complete_utf8(data) or None

    def _logged(self, chunk: bytes, accepted_until: int) -> None:
        self._last_log = time.monotonic()
        # The API may already hold more (a retry after a lost answer): trust what it acknowledged.
        self.log_offset = max(self.log_offset + len(chunk), accepted_until)

    def _ship_log(self, force: bool) -> bool:
        """Log bytes on their own (no events to ride along with), at most every log_interval."""
        waiting = self._log_waiting()
        if waiting <= 0:
            return False
        now = time.monotonic()
        if not force and waiting < LOG_EAGER_BYTES and now - self._last_log < self.log_interval:
            return False
        self._last_log = now
        chunk = self._log_chunk()
        if chunk is None:
            return False
        answer = self.api.logs(
            self.run_id, self.attempt, self.log_offset, chunk.decode("utf-8", "replace")
        )
        self._note(answer)
        self._logged(chunk, answer.accepted_until)
        return True

    def ship_once(self, force: bool = False) -> bool:
        """Ship what is new; True if something was sent (call again to drain). Log bytes wait
        up to ``log_interval`` unless ``force``."""
        with self._lock:
            try:
                sent_events = self._ship_events()
                sent_log = self._ship_log(force)
                quiet_for = time.monotonic() - self._last_contact
                if self.keepalive is not None and quiet_for >= self.keepalive_seconds:
                    self._note(self.keepalive())
            except (ApiUnavailable, Conflict, httpx.HTTPError) as exc:
                self.last_error = str(exc)
                log.warning("run %s: shipping failed: %s", self.run_id, exc)
                return False
            if sent_events or sent_log:
                self._unsaved = True
            if self._unsaved and (force or time.monotonic() - self._saved_at >= STATE_SAVE_SECONDS):
                self.save_state()
            return sent_events or sent_log

    def save_state(self) -> None:
        self._saved_at, self._unsaved = time.monotonic(), False
        if self.state_path is None:
            return
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps({"events_offset": self.events_offset, "log_offset": self.log_offset})
        )
        tmp.replace(self.state_path)

    def drain(self, max_rounds: int = 10_000) -> None:
        """Ship everything on disk (after the process exited)."""
        for _ in range(max_rounds):
            if not self.ship_once(force=True):
                return


class ShipperThread(threading.Thread):
    """Calls ``ship_once`` every ``interval`` seconds until stopped."""

    def __init__(self, shipper: RunShipper, interval: float) -> None:
        super().__init__(name=f"ship-{shipper.run_id}", daemon=True)
        self.shipper, self.interval = shipper, interval
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            # Drain bursts at once rather than one batch per tick.
            while self.shipper.ship_once() and not self._stop_event.is_set():
                pass
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=30)


def ship_leftovers(api: WorkerApi, run_id: str, paths: RunPaths, attempt: int) -> int:
    """Before attempt ``attempt`` starts: ship what earlier attempts wrote but never shipped.

    A worker killed mid-run leaves the last events (among them the ``end`` that the dying
    training wrote) and log bytes unshipped; nothing else would ever send them. Returns the
    number of events sent. Every line of events.jsonl up to now belongs to earlier attempts.
    """
    sent = 0
    events_path = paths.events
    until = events_path.stat().st_size if events_path.exists() else 0
    for earlier in range(1, attempt):
        path = paths.shipped_state(earlier)
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # never shipped anything, or nothing recorded
        shipper = RunShipper(
            api,
            run_id,
            earlier,
            events_path,
            paths.log(earlier),
            events_offset=int(state.get("events_offset", 0)),
            log_offset=int(state.get("log_offset", 0)),
            events_until=until,
            state_path=path,
        )
        shipper.drain()
        sent += shipper.events_shipped
    return sent


def offset_after_seq(events_path: Path, start: int, seq: int | None) -> int:
    """The byte offset in events.jsonl just after the last complete line from ``start`` whose
    ``seq`` is at most ``seq`` (what the API has of an attempt): a worker that takes an attempt
    back ships on from there. ``seq`` None: the API has none of it, so ``start``."""
    if seq is None:
        return start
    offset = start
    try:
        with open(events_path, "rb") as f:
            f.seek(start)
            for line in f:
                if not line.endswith(b"\n"):
                    break  # a line being written
                try:
                    line_seq = int(json.loads(line).get("seq", -1))
                except (ValueError, AttributeError, TypeError):
                    line_seq = -1
                if line_seq > seq:
                    break
                offset += len(line)
    except OSError:
        return start
    return offset
