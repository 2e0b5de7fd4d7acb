"""Follow a run until it ends: a progress bar (step, loss, ETA) on a terminal, plain lines
otherwise. Driven by the run's SSE stream; falls back to polling if the stream breaks."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cpt_cli.client import request
from cpt_contract.statuses import TERMINAL_STATUSES

TERMINAL = {s.value for s in TERMINAL_STATUSES}


@dataclass
class RunView:
    """What the display shows, merged from status and metric events."""

    run_id: str
    status: str = "queued"
    step: int = 0
    max_steps: int | None = None
    loss: float | None = None
    eta_seconds: float | None = None
    reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: Eval lines not printed yet, and the evals already printed (by attempt and seq: a
    #: reconnect replays events, each eval is printed once).
    pending: list[str] = field(default_factory=list)
    evals_seen: set[tuple[int, int]] = field(default_factory=set)
    baseline: dict[str, float] = field(default_factory=dict)

    def update_run(self, run: dict[str, Any]) -> None:
        self.status = run.get("status") or self.status
        self.step = max(self.step, int(run.get("step") or 0))
        self.max_steps = run.get("max_steps") or self.max_steps
        self.loss = run.get("loss") if run.get("loss") is not None else self.loss
        self.eta_seconds = run.get("eta_seconds")
        self.reason = run.get("status_reason")

    def update_metric(self, event: dict[str, Any]) -> None:
        data = {**event, **(event.get("data") or {})}
        self.step = max(self.step, int(data.get("step") or 0))
        if data.get("max_steps"):
            self.max_steps = int(data["max_steps"])
        if data.get("loss") is not None:
            self.loss = float(data["loss"])
        if data.get("kind") == "eval":
            key = (int(data.get("attempt") or 0), int(data.get("seq") or 0))
            if key not in self.evals_seen:
                self.evals_seen.add(key)
                self.pending.append(eval_line(data, self.baseline))

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    def line(self) -> str:
        total = f"/{self.max_steps}" if self.max_steps else ""
        loss = f"  loss {self.loss:.4f}" if self.loss is not None else ""
        eta = f"  eta {self.eta_seconds:.0f}s" if self.eta_seconds is not None else ""
        return f"{self.run_id}  {self.status:<10} step {self.step}{total}{loss}{eta}"


def eval_line(data: dict[str, Any], baseline: dict[str, float]) -> str:
    """``eval step 40  kn 2.913 bits/char (-0.412)  en 1.201 (+0.020)``: every set's bits per
    character and its change since the first evaluation seen (step 0 with eval_at_start)."""
    suffix = "_bits_per_char"
    parts = []
    for key, value in data.items():
        if not (key.startswith("eval_") and key.endswith(suffix)) or not isinstance(
            value, int | float
        ):
            continue
        name = key[len("eval_") : -len(suffix)]
        base = baseline.setdefault(name, float(value))
        change = f" ({value - base:+.3f})" if int(data.get("step") or 0) > 0 else ""
        parts.append(f"{name} {value:.3f} bits/char{change}")
    if not parts and isinstance(data.get("eval_loss"), int | float):
        parts.append(f"eval_loss {data['eval_loss']:.4f}")
    return f"eval step {data.get('step')}  " + "  ".join(parts)


def sse_events(client: httpx.Client, path: str) -> Iterator[tuple[str, str]]:
    """(event, data) pairs of a text/event-stream; ends when the server closes it."""
    timeout = httpx.Timeout(10.0, read=30.0)
    with client.stream("GET", path, timeout=timeout) as response:
        response.raise_for_status()
        event, data = "message", list[str]()
        for line in response.iter_lines():
            if not line:
                if data:
                    yield event, "\n".join(data)
                event, data = "message", []
            elif line.startswith(":"):
                continue  # keep-alive comment
            elif line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip())


def _stream(client: httpx.Client, view: RunView, render: Any) -> None:
    for event, data in sse_events(client, f"/runs/{view.run_id}/stream"):
        try:
            payload = json.loads(data)
        except ValueError:
            continue
        if event == "status":
            view.update_run(payload)
        elif event == "metric":
            view.update_metric(payload)
        else:
            continue
        render()
        if view.done:
            return


def follow(client: httpx.Client, run_id: str, console: Console) -> RunView:
    """Show progress until the run reaches a final state; returns the final view."""
    view = RunView(run_id)
    view.update_run(request(client, "GET", f"/runs/{run_id}"))
    # The changes are since the run's first evaluation, even when following starts later.
    first = request(client, "GET", f"/runs/{run_id}/events", params={"kind": "eval", "limit": 1})
    if first:
        eval_line({**first[0], **(first[0].get("data") or {})}, view.baseline)
    if console.is_terminal:
        with Progress(
            TextColumn("[bold]{task.fields[run]}[/] {task.fields[status]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}  eta {task.fields[eta]}"),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("run", total=None, run=run_id, status="", loss="-", eta="-")

            def render() -> None:
                for text in view.pending:
                    progress.console.print(text, highlight=False)
                view.pending.clear()
                progress.update(
                    task,
                    completed=view.step,
                    total=view.max_steps,
                    status=view.status,
                    loss=f"{view.loss:.4f}" if view.loss is not None else "-",
                    eta=f"{view.eta_seconds:.0f}s" if view.eta_seconds is not None else "-",
                )

            _drive(client, view, render)
    else:
        last: list[str] = [""]

        def render() -> None:
            for text in view.pending:
                console.print(text, highlight=False)
            view.pending.clear()
            text = view.line()
            if text != last[0]:
                console.print(text, highlight=False)
                last[0] = text

        _drive(client, view, render)
    # The stream can end on the status change before the final numbers land: read them once.
    view.update_run(request(client, "GET", f"/runs/{run_id}"))
    return view


def _drive(client: httpx.Client, view: RunView, render: Any) -> None:
    render()
    while not view.done:
        # Stream unavailable or broken: poll for a while, then try the stream again.
        with contextlib.suppress(httpx.HTTPError):
            _stream(client, view, render)
        if not view.done:
            _poll_once_then_retry(client, view, render)


def _poll_once_then_retry(client: httpx.Client, view: RunView, render: Any) -> None:
    """Between stream attempts, poll for a few seconds (covers an API without SSE)."""
    deadline = time.monotonic() + 3
    while not view.done and time.monotonic() < deadline:
        view.update_run(request(client, "GET", f"/runs/{view.run_id}"))
        render()
        time.sleep(0.5)
