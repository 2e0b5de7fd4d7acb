"""A run's model card (``README.md``), written from what the panel measured, never typed in:

- the base model and where it came from (its ``cpt_source.json``: Hub id, revision, commit);
- the languages (the evaluation sets named by a language code);
- the tokenizer extension (the tokenizer job that made it: base, texts, size) and its fertility
  table, and what the run did to the embeddings (the start event's ``vocabulary``);
- the data sources with their token counts (the start event's ``data_sources``);
- bits per character per evaluation set at step 0 and at the checkpoint's step (eval events);
- the training config and the exact command (the argv the worker launched, else the derived one).

One renderer serves the download (``GET /api/runs/{id}/model-card``), the checkpoint tarball
and a merged model's directory, so the card is the same wherever it is read.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from sqlmodel import Session, col, select

from backend.models import Job, Run, RunEvent
from cpt_contract.runconfig.argv import display_command
from cpt_contract.statuses import RunStatus

LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}$")


def _events(session: Session, run_id: str, kind: str) -> list[dict[str, Any]]:
    rows = session.exec(
        select(RunEvent)
        .where(RunEvent.run_id == run_id, RunEvent.kind == kind)
        .order_by(col(RunEvent.seq))
    )
    return [dict(r.data) for r in rows if isinstance(r.data, dict)]


def _source(model: str | None) -> dict[str, Any] | None:
    if not model:
        return None
    try:
        data = json.loads((Path(model) / "cpt_source.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _tokenizer_job(session: Session, tokenizer: str | None) -> Job | None:
    if not tokenizer:
        return None
    jobs = session.exec(
        select(Job)
        .where(Job.kind == "tokenizer", Job.status == RunStatus.succeeded)
        .order_by(col(Job.finished_at).desc())
        .limit(500)
    )
    for job in jobs:
        result = job.result or {}
        if tokenizer in (result.get("output"), result.get("path")):
            return job
    return None


def _table(rows: list[dict[str, Any]], columns: list[str]) -> list[str]:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v).replace("|", "\\|").replace("\n", " ") if v is not None else "-"

    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    out += ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in rows]
    return out


def _fertility(result: dict[str, Any]) -> list[str]:
    report = result.get("fertility")
    rows = report.get("rows") if isinstance(report, dict) else report
    if not isinstance(rows, list) or not rows or not isinstance(rows[0], dict):
        return []
    columns = [k for k, v in rows[0].items() if isinstance(v, str | int | float)][:9]
    return _table(rows, columns)


def _bits_per_char(
    evals: list[dict[str, Any]], step: int | None
) -> tuple[list[dict[str, Any]], int | None, int | None]:
    """Per set: bits/char at step 0 and at ``step`` (else the last evaluation)."""
    if not evals:
        return [], None, None
    first = next((e for e in evals if e.get("step") == 0), evals[0])
    upto = [e for e in evals if step is None or (e.get("step") or 0) <= step]
    last = upto[-1] if upto else evals[-1]
    names = sorted(
        k.removeprefix("eval_").removesuffix("_bits_per_char")
        for k in {*first, *last}
        if k.startswith("eval_") and k.endswith("_bits_per_char")
    )
    rows = []
    for name in names:
        key = f"eval_{name}_bits_per_char"
        start, end = first.get(key), last.get(key)
        change = end - start if isinstance(start, float) and isinstance(end, float) else None
        rows.append({"set": name, "step 0": start, "end": end, "change": change})
    return rows, first.get("step"), last.get("step")


def render(session: Session, run: Run, checkpoint: str | None = None) -> str:
    """The card of ``run`` (at ``checkpoint``, e.g. ``checkpoint-200``; None: the run's end)."""
    config: dict[str, Any] = dict(run.config or {})
    model = config.get("model") or {}
    data = config.get("data") or {}
    base = model.get("model_name_or_path")
    tokenizer = model.get("tokenizer_name_or_path")
    step = int(checkpoint.split("-")[1]) if checkpoint and checkpoint.count("-") == 1 else None
    starts = _events(session, run.id, "start")
    start = starts[-1] if starts else {}
    source = _source(base) or {}
    eval_sets = data.get("eval_sets") or {}
    languages = sorted(n for n in eval_sets if LANGUAGE_CODE.match(str(n)))
    hub_base = source.get("hub_id") if source.get("kind") == "hub" else None

    front: dict[str, Any] = {"library_name": "transformers", "tags": ["continual-pretraining"]}
    if hub_base:
        front["base_model"] = hub_base
    if languages:
        front["language"] = languages
    lines = ["---", yaml.safe_dump(front, sort_keys=False, allow_unicode=True).strip(), "---"]
    title = run.name or run.id
    lines += [f"# {title}", ""]
    lines.append(
        f"Continued pretraining ({start.get('finetuning_type') or (config.get('method') or {}).get('finetuning_type', '?')}) "
        f"of `{hub_base or base or 'a model built from its config'}`"
        + (f" at revision `{source.get('revision')}` (commit `{source.get('commit')}`)" if hub_base else "")
        + f", run `{run.id}`" + (f", `{checkpoint}`" if checkpoint else "") + "."
    )  # fmt: skip
    lines.append("")
    lines += ["## Base model", ""]
    lines.append(f"- path: `{base}`" if base else "- none (built from its config)")
    for key in ("hub_id", "revision", "commit", "endpoint", "file"):
        if source.get(key):
            lines.append(f"- {key.replace('_', ' ')}: `{source[key]}`")
    if languages:
        lines += ["", "## Languages", "", ", ".join(languages)]

    lines += ["", "## Tokenizer", ""]
    vocabulary = start.get("vocabulary")
    if tokenizer and tokenizer != base:
        lines.append(f"- tokenizer: `{tokenizer}`")
    if isinstance(vocabulary, dict):
        lines.append(f"- embeddings: {vocabulary.get('message')}")
    elif not tokenizer or tokenizer == base:
        lines.append("- the base model's own tokenizer, not extended")
    job = _tokenizer_job(session, tokenizer)
    if job is not None:
        params = job.params or {}
        lines.append(
            f"- extended by job `{job.id}` from `{params.get('base')}` on "
            + ", ".join(f"`{c}`" for c in params.get("corpus") or [])
            + f" ({params.get('model_type')}, {params.get('vocab_size')} pieces trained)"
        )
        table = _fertility(job.result or {})
        if table:
            lines += ["", "Fertility (measured by the tokenizer job):", "", *table]

    lines += ["", "## Training data", ""]
    sources = start.get("data_sources") or []
    if sources:
        cols = ["name", "weight", "files", "documents", "tokens", "blocks"]
        lines += _table([s for s in sources if isinstance(s, dict)], cols)
    else:
        lines.append(f"- `{data.get('dataset_dir') or data.get('train_file')}`")

    rows, first_step, last_step = _bits_per_char(_events(session, run.id, "eval"), step)
    lines += ["", "## Evaluation: bits per character", ""]
    if rows:
        lines.append(f"Held-out sets at step {first_step} and at step {last_step}:")
        lines += ["", *_table(rows, ["set", "step 0", "end", "change"])]
        sets = [s for s in start.get("eval_sets") or [] if isinstance(s, dict)]
        if sets:
            lines += ["", "Each set's scored text:", ""]
            lines += _table(sets, ["name", "path", "documents", "characters", "tokens"])
    else:
        lines.append("No evaluation was recorded.")

    lines += ["", "## Training config", "", "```yaml"]
    lines.append(yaml.safe_dump(config, sort_keys=False, allow_unicode=True).strip())
    lines += ["```", "", "## Command", "", "```bash"]
    attempts = run.attempt_argv or {}
    argv = attempts[max(attempts, key=int)] if attempts else None
    lines.append(display_command(argv) if isinstance(argv, list) and argv else "(not launched yet)")
    lines += ["```", "", "Written by cpt-panel from the run's recorded events.", ""]
    return "\n".join(lines)


def files_for(session: Session, job: Job) -> dict[str, str]:
    """What a job's output gets besides what its tool writes: a merge's directory and a
    published repo, the run's card."""
    params = job.params or {}
    if job.kind not in ("merge", "publish") or not job.run_id:
        return {}
    run = session.get(Run, job.run_id)
    if run is None:
        return {}
    return {"README.md": render(session, run, params.get("checkpoint"))}
