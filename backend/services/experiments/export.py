"""The verdict as files: Markdown (a short report: setup, table, winner, rungs, samples), CSV
(the table) and JSON (the verdict as the API answers it). Numbers are the verdict's, only
formatted; benchmark scores are written in CSV exactly as stored (``repr``: no rounding), in
Markdown to 4 decimals, each with the checkpoint scored when it is not the run's last."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

#: A missing figure (an en dash, as the UI shows it).
NONE = "\u2013"


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return NONE
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _signed(value: Any) -> str:
    return NONE if value is None else f"{value:+.4f}"


def _short(value: Any) -> str:
    text = str(value)
    return text.rstrip("/").rsplit("/", 1)[-1] if "/" in text else text


def _score(r: dict[str, Any], task: str, metric: str) -> dict[str, Any] | None:
    return next(
        (s for s in r.get("scores") or [] if s["task"] == task and s["metric"] == metric), None
    )


def _score_cell(s: dict[str, Any] | None, exact: bool) -> str:
    if s is None or s["value"] is None:
        return NONE
    return repr(s["value"]) if exact else f"{s['value']:.4f}"


def table(v: dict[str, Any], exact: bool = False) -> tuple[list[str], list[list[str]]]:
    """The verdict table's header and rows as text (Markdown, CSV and the CLI share it).
    ``exact``: the CSV's benchmark scores, as stored, with the checkpoint scored in a column of
    its own."""
    benches = v.get("benchmarks") or []  # (a CLI may read an older panel's verdict)
    head = ["run", *v["axes"], "status", "trainable params", "tokens seen", "wall s", "device-h"]
    for name in v["sets"]:
        head += [f"{name} step 0", f"{name} end", f"{name} change"]
    head += [f"forgetting {n}" for n in v["retain"]] + ["within cap"]
    for b in benches:
        head.append(f"{b['task']} {b['metric']}")
        if exact:
            head.append(f"{b['task']} {b['metric']} checkpoint")
    rows = []
    for r in v["rows"]:
        status = "stopped early" if r["stopped_early"] else r["status"]
        line = [r["run_id"], *(_short(r["values"].get(a)) for a in v["axes"]), status]
        line += [
            _num(r["trainable_params"]),
            _num(r["tokens_seen"]),
            _num(r["wall_seconds"], 1),
            _num(r["device_hours"], 4),
        ]
        for name in v["sets"]:
            f = r["sets"].get(name) or {}
            line += [_num(f.get("start")), _num(f.get("end")), _signed(f.get("change"))]
        line += [_signed(r["forgetting"].get(n)) for n in v["retain"]]
        line.append({True: "yes", False: "no", None: NONE}[r["within_cap"]])
        for b in benches:
            s = _score(r, b["task"], b["metric"])
            cell = _score_cell(s, exact)
            if exact:
                line += [cell, s["checkpoint"] if s else NONE]
            else:  # the checkpoint is said only when it is not the run's last
                line.append(cell if s is None or s["final"] else f"{cell} ({s['checkpoint']})")
        rows.append(line)
    return head, rows


def to_csv(v: dict[str, Any]) -> str:
    head, rows = table(v, exact=True)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(head)
    writer.writerows(rows)
    return out.getvalue()


def to_json(v: dict[str, Any]) -> str:
    return json.dumps(v, default=str, indent=2, ensure_ascii=False)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def winner_text(v: dict[str, Any]) -> str:
    w = v["winner"]
    if w is None:
        return str(v["no_winner"])
    text = (
        f"{w['name'] or w['run_id']} ({w['run_id']}): {v['target']} "
        f"{w['target_bits_per_char']:.4f} bits/char"
    )
    if w["runner_up"]:
        text += f", {w['margin']:.4f} bits/char better than the runner-up ({w['runner_up']})"
    else:
        text += " (the only run within the cap)"
    return text


def to_markdown(v: dict[str, Any]) -> str:
    spec = v["spec"]
    e = v["experiment"]
    lines = [f"# {e['name']} ({e['id']})", "", "## Setup", ""]
    for axis in v["axes"]:
        values = (spec.get("axes") or {}).get(axis) or sorted(
            {str(c.get(axis)) for c in spec.get("combinations") or []}
        )
        lines.append(f"- axis `{axis}`: {', '.join(_short(x) for x in values)}")
    budget = spec.get("budget") or {}
    lines += [
        f"- runs: {len(v['rows'])} ({e['status']})",
        f"- target set: {v['target']}; retain sets: {', '.join(v['retain']) or 'none'}",
        f"- forgetting cap: +{v['forgetting_cap']} bits/char over step 0 on each retain set",
        f"- budget: {', '.join(f'{k} {x}' for k, x in budget.items() if x) or 'the base config'}",
    ]
    if spec.get("early_stopping"):
        lines.append(f"- early stopping: successive halving, keep {spec['early_stopping']['keep']}")
    for w in v["warnings"]:
        lines.append(f"- **not comparable**: {w}")
    head, rows = table(v)
    lines += ["", "## Runs", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    if v.get("benchmarks"):
        lines += [
            "",
            "Benchmark scores are each run's last checkpoint's; a checkpoint in brackets is the "
            "latest scored one when the last was not scored.",
        ]
    lines += ["", "## Winner", "", winner_text(v)]
    if v["rungs"]:
        lines += ["", "## Early stopping", ""]
        for rung in v["rungs"]:
            cut = NONE if rung["cutoff"] is None else f"{rung['cutoff']:.4f}"
            runs = ", ".join(
                f"{p['run_id']} {p['value']:.4f}{' (stopped)' if p['stopped'] else ''}"
                for p in rung["runs"]
            )
            lines.append(f"- rung {rung['rung']}: keep {rung['kept']}, cut-off {cut}: {runs}")
    if v["samples"]["prompts"]:
        lines += ["", "## Samples", ""]
        ids = [r["run_id"] for r in v["rows"]]
        lines += ["| prompt | " + " | ".join(ids) + " |", "|" + "---|" * (len(ids) + 1)]
        for p in v["samples"]["prompts"]:
            texts = [_cell(p["texts"].get(i, NONE)) for i in ids]
            lines.append(
                f"| {_cell(p['prompt'])} ({p['set']}, {p['mode']}) | " + " | ".join(texts) + " |"
            )
    return "\n".join(lines) + "\n"
