"""The watch loop's sleep (worker/attempt/waker.py) on real processes: it ends at the process's exit
and at a wake-up (from a thread or a signal handler) long before its timeout."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

from worker.attempt.waker import Waker


def _sleeper(seconds: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({seconds})"])


def test_the_wait_ends_when_the_process_exits() -> None:
    proc = _sleeper(0.3)
    waker = Waker(proc.pid)
    t0 = time.monotonic()
    while proc.poll() is None and time.monotonic() - t0 < 10:
        waker.wait(5.0)
    took = time.monotonic() - t0
    waker.close()
    assert proc.returncode == 0 and took < 2.0, took


def test_a_wake_from_another_thread_ends_the_wait() -> None:
    proc = _sleeper(30)
    try:
        waker = Waker(proc.pid)
        threading.Timer(0.2, waker.wake).start()
        t0 = time.monotonic()
        waker.wait(10.0)
        assert time.monotonic() - t0 < 3.0
        t0 = time.monotonic()
        waker.wait(0.2)  # the wake-up was consumed: this one runs to its timeout
        assert time.monotonic() - t0 >= 0.15
    finally:
        proc.kill()
        proc.wait()


def test_a_wake_from_a_signal_handler_ends_the_wait() -> None:
    proc = _sleeper(30)
    previous = signal.signal(signal.SIGUSR1, lambda *_: waker.wake())
    try:
        waker = Waker(proc.pid)
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGUSR1)).start()
        t0 = time.monotonic()
        waker.wait(10.0)
        assert time.monotonic() - t0 < 3.0
    finally:
        signal.signal(signal.SIGUSR1, previous)
        proc.kill()
        proc.wait()
