"""In-process pub/sub that feeds the SSE streams (the API runs as one process).

Publishers may be request threads (sync endpoints run in a thread pool), so ``publish`` hops onto
the event loop with ``call_soon_threadsafe``. A slow subscriber loses messages rather than
growing without bound; the stream then tells the client to resync.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

QUEUE_SIZE = 10_000


@dataclass(frozen=True)
class Message:
    topic: str
    event: str
    data: Any


@dataclass(eq=False)
class Subscription:
    topics: frozenset[str]
    queue: asyncio.Queue[Message] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    dropped: int = 0


class Bus:
    def __init__(self) -> None:
        self._subs: set[Subscription] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Called once from the app's lifespan: the loop the subscribers live on."""
        self._loop = loop

    def publish(self, topic: str, event: str, data: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return  # no app running (e.g. a script using the services): nobody listens
        if not self.has_subscribers(topic):
            # Nobody listens (no page open on it): no hop onto the loop, which would wake it
            # for nothing; that wake-up was a tenth of the API's CPU while a run trained.
            return
        msg = Message(topic, event, data)
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._dispatch(msg)
        else:
            loop.call_soon_threadsafe(self._dispatch, msg)

    def has_subscribers(self, topic: str) -> bool:
        with self._lock:
            return any(topic in s.topics for s in self._subs)

    def _dispatch(self, msg: Message) -> None:
        with self._lock:
            subs = [s for s in self._subs if msg.topic in s.topics]
        for sub in subs:
            try:
                sub.queue.put_nowait(msg)
            except asyncio.QueueFull:
                sub.dropped += 1

    @contextlib.asynccontextmanager
    async def subscribe(self, *topics: str) -> AsyncIterator[Subscription]:
        sub = Subscription(frozenset(topics))
        with self._lock:
            self._subs.add(sub)
        try:
            yield sub
        finally:
            with self._lock:
                self._subs.discard(sub)

    @property
    def subscriber_count(self) -> int:
        return len(self._subs)


bus = Bus()


def run_topic(run_id: str) -> str:
    return f"run:{run_id}"


def job_topic(job_id: str) -> str:
    return f"job:{job_id}"


RUNS_TOPIC = "runs"
