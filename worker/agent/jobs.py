"""One job (merge, tokenizer, scan, generate, clean, evaluate, ...) on this box's job slot: claim, run the tool, ship its log,
report the result.

Each kind is a ``python -m worker.<tool>`` subprocess (an argv list, never a shell) in its own
session; its whole process tree is tracked (``worker.attempt.proctree``), so a cancel ends all of it,
SIGTERM then SIGKILL after the grace, even a child that left the session. The tool writes
``result.json`` in the job dir; a merge's result is the merged directory itself.
"""

from __future__ import annotations

import json
import logging
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

from cpt_contract.jobs import (
    PATH_PARAMS,
    CleanParams,
    DownloadParams,
    EvaluateParams,
    ExportParams,
    GenerateParams,
    ImportParams,
    MergeParams,
    PublishParams,
    ScanParams,
    TokenizerParams,
)
from cpt_contract.protocol import JobClaimOut
from cpt_contract.run_paths import JobPaths, RunPaths
from cpt_contract.settings import Settings
from worker.attempt import launcher
from worker.attempt.api_client import ApiUnavailable, Conflict, WorkerApi, shared_api
from worker.attempt.environment import ROOT, child_env, refused_path
from worker.attempt.files import last_error_line, note
from worker.attempt.proctree import ProcessTree
from worker.attempt.registry import worker_name
from worker.benchmark.job import evaluate_argv, evaluate_env

log = logging.getLogger(__name__)

#: How often a running job's log is shipped (and a cancel is noticed).
SHIP_SECONDS = 0.5
MAX_CHUNK = 256 * 1024


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def merge_argv(settings: Settings, params: MergeParams) -> tuple[list[str], Path]:
    run = RunPaths.of(settings.runs_dir, params.run_id)
    base = json.loads(run.config.read_text())["model"]["model_name_or_path"]
    out = run.merged(params.checkpoint)
    argv = [sys.executable, "-m", "worker.merge_lora", f"--base={base}"]
    argv += ["--adapter", str(run.checkpoint(params.checkpoint)), "--output", str(out)]
    return argv, out


def check_paths(settings: Settings, claim: JobClaimOut) -> None:
    """The job's paths and every file inside them stay under this box's roots (``ValueError``:
    the job fails with the reason)."""
    fields = []
    for name in PATH_PARAMS.get(claim.kind, ()):
        value = claim.params.get(name)
        values = value if isinstance(value, list) else [value] if value else []
        fields += [(f"params.{name}", str(raw)) for raw in values]
    if (why := refused_path(fields, settings.roots)) is not None:
        raise ValueError(why)


def tool_argv(settings: Settings, claim: JobClaimOut, paths: JobPaths) -> list[str]:
    """The argv of the job's tool; it writes ``paths.result`` (merge: see ``merge_argv``)."""
    check_paths(settings, claim)
    if claim.kind == "merge":
        return merge_argv(settings, MergeParams.model_validate(claim.params))[0]
    if claim.kind == "tokenizer":
        t = TokenizerParams.model_validate(claim.params)
        # A user's value is glued to its flag: it can never be read as a flag of its own.
        argv = [sys.executable, "-m", "worker.tokenizer", "extend", f"--base={t.base}"]
        argv += ["--input", *t.corpus, "--model_type", t.model_type]
        argv += [
            "--vocab_size",
            str(t.vocab_size),
            "--character_coverage",
            str(t.character_coverage),
        ]
        if t.max_new is not None:
            argv += ["--max_new", str(t.max_new)]
        if t.eval_text:
            argv += ["--text", *t.eval_text]
        return [*argv, "--output", str(paths.output), "--json", str(paths.result)]
    if claim.kind == "scan":
        s = ScanParams.model_validate(claim.params)
        argv = [sys.executable, "-m", "worker.data", "scan", *s.paths, "--json", str(paths.result)]
        argv += ["--cache_dir", str(settings.data_cache_dir)]
        if s.tokenizer:
            argv.append(f"--tokenizer={s.tokenizer}")
        if s.block_size:
            argv += ["--block_size", str(s.block_size)]
        # --flag=value: a user's value is never read as a flag.
        return [*argv, f"--txt_documents={s.txt_documents}", f"--text_column={s.text_column}"]
    if claim.kind == "generate":
        return generate_argv(settings, GenerateParams.model_validate(claim.params), paths)
    if claim.kind == "clean":
        return clean_argv(settings, CleanParams.model_validate(claim.params), paths)
    if claim.kind == "publish":
        return publish_argv(settings, claim, paths)
    if claim.kind == "export":
        return export_argv(settings, ExportParams.model_validate(claim.params), paths)
    if claim.kind == "download":
        return download_argv(settings, DownloadParams.model_validate(claim.params), paths)
    if claim.kind == "evaluate":
        return evaluate_argv(settings, EvaluateParams.model_validate(claim.params), paths)
    if claim.kind == "import":
        i = ImportParams.model_validate(claim.params)
        argv = [sys.executable, "-m", "worker.hub", "import-gguf", f"--gguf={i.gguf}"]
        argv += [f"--dest_root={settings.models_dir}", f"--name={i.name}", f"--dtype={i.dtype}"]
        argv.append(f"--reserve_bytes={settings.download_reserve_bytes}")
        return [*argv, f"--json={paths.result}"]
    raise ValueError(f"unknown job kind {claim.kind!r}")


def publish_argv(settings: Settings, claim: JobClaimOut, paths: JobPaths) -> list[str]:
    """The run's merged model of the checkpoint (else the checkpoint's own weights) to the
    repo; the card the claim carried goes up as README.md. The token is not here."""
    p = PublishParams.model_validate(claim.params)
    run = RunPaths.of(settings.runs_dir, p.run_id)
    merged = run.merged(p.checkpoint)
    folder = merged if (merged / "config.json").is_file() else run.checkpoint(p.checkpoint)
    argv = [sys.executable, "-m", "worker.hub", "publish", f"--folder={folder}"]
    argv += [f"--repo_id={p.repo_id}", f"--private={'true' if p.private else 'false'}"]
    card = claim.files.get("README.md")
    if card:
        paths.job_dir.mkdir(parents=True, exist_ok=True)
        (paths.job_dir / "README.md").write_text(card, encoding="utf-8")
        argv.append(f"--card={paths.job_dir / 'README.md'}")
    argv.append(f"--message=Upload {p.run_id} {p.checkpoint} from cpt-panel")
    return [*argv, f"--json={paths.result}"]


def export_argv(settings: Settings, e: ExportParams, paths: JobPaths) -> list[str]:
    """The run's merged model of the checkpoint, else the checkpoint itself (full weights);
    scored on the run's evaluation sets as its config names them."""
    run = RunPaths.of(settings.runs_dir, e.run_id)
    merged = run.merged(e.checkpoint)
    source = merged if (merged / "config.json").is_file() else run.checkpoint(e.checkpoint)
    config = json.loads(run.config.read_text())
    data = config.get("data") or {}
    argv = [sys.executable, "-m", "worker.export", f"--source={source}"]
    argv += [f"--output={run.exported(e.checkpoint, e.dtype)}", f"--dtype={e.dtype}"]
    argv.append(f"--max_shard_size={e.max_shard_size}")
    if data.get("eval_sets"):
        argv.append(f"--eval_sets={json.dumps(data['eval_sets'])}")
    if data.get("block_size"):
        argv.append(f"--block_size={data['block_size']}")
    return [*argv, f"--json={paths.result}"]


def download_argv(settings: Settings, d: DownloadParams, paths: JobPaths) -> list[str]:
    """Every user value as ``--flag=value`` (never read as a flag); the token is not here."""
    root = settings.models_dir if d.repo_type == "model" else settings.datasets_dir
    argv = [sys.executable, "-m", "worker.hub", "download", f"--repo_id={d.repo_id}"]
    argv += [f"--revision={d.revision}", f"--repo_type={d.repo_type}", f"--dest_root={root}"]
    argv.append(f"--name={d.dir_name()}")
    argv += [f"--skip={g}" for g in d.skip] + [f"--allow={g}" for g in d.allow()]
    if d.text_column:
        argv.append(f"--text_column={d.text_column}")
    argv.append(f"--reserve_bytes={settings.download_reserve_bytes}")
    return [*argv, f"--json={paths.result}"]


def tool_env(settings: Settings, kind: str, hub_token: str | None = None) -> dict[str, str]:
    """What a kind's tool needs in its environment: the Hub endpoint and token for a download
    or a publish (the token only there, and only in the environment). The token is the one the claim
    carried (the panel's, set in Settings), else this worker's own ``CPT_HUB_TOKEN``."""
    if kind == "evaluate":
        return evaluate_env(settings, hub_token or settings.hub_token)
    if kind not in ("download", "publish"):
        return {}
    env = {"HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
    if settings.hub_endpoint:
        env["HF_ENDPOINT"] = settings.hub_endpoint
    token = hub_token or settings.hub_token
    if token:
        env["HF_TOKEN"] = token
    return env


def generate_argv(settings: Settings, g: GenerateParams, paths: JobPaths) -> list[str]:
    run = RunPaths.of(settings.runs_dir, g.run_id)
    model = json.loads(run.config.read_text())["model"]
    argv = [
        sys.executable,
        "-m",
        "worker.generate",
        "--checkpoint",
        str(run.checkpoint(g.checkpoint)),
    ]
    if model.get("model_name_or_path"):
        argv.append(f"--base={model['model_name_or_path']}")
    if model.get("tokenizer_name_or_path"):
        argv.append(f"--tokenizer={model['tokenizer_name_or_path']}")
    # A prompt may begin with '-': glued to its flag, it stays the prompt.
    argv += [f"--prompt={g.prompt}", "--max_new_tokens", str(g.max_new_tokens), "--mode", g.mode]
    argv += ["--temperature", str(g.temperature), "--seed", str(g.seed)]
    return [*argv, "--json", str(paths.result)]


def clean_argv(settings: Settings, c: CleanParams, paths: JobPaths) -> list[str]:
    """The params go to the tool as a file (validated again there); the datasets root must be
    under this box's roots, checked here as the API did, since the two may be different boxes."""
    root = Path(c.output_root).expanduser().resolve() if c.output_root else settings.datasets_dir
    if not settings.roots.admits(root):
        raise ValueError(f"params.output_root: {settings.roots.why_not(root, root)}")
    config = paths.job_dir / "clean.json"
    config.write_text(c.model_dump_json(), encoding="utf-8")
    argv = [sys.executable, "-m", "worker.clean", f"--config={config}"]
    return [*argv, f"--output_root={root}", f"--json={paths.result}"]


def write_files(settings: Settings, claim: JobClaimOut) -> None:
    """The text files the claim carried (a merge's model card) into the job's output."""
    if claim.kind != "merge" or not claim.files:
        return
    out = merge_argv(settings, MergeParams.model_validate(claim.params))[1]
    for name, text in claim.files.items():
        if "/" in name or name.startswith("."):
            raise ValueError(f"files: {name!r} is not a plain file name")
        (out / name).write_text(text, encoding="utf-8")


def result_of(settings: Settings, claim: JobClaimOut, paths: JobPaths) -> dict[str, Any]:
    if claim.kind == "merge":
        out = merge_argv(settings, MergeParams.model_validate(claim.params))[1]
        return {"output": str(out), "size_bytes": _size(out)}
    return dict(json.loads(paths.result.read_text()))


class JobShipper:
    """Ships the job log by byte offset (idempotent on the API); notes a requested cancel."""

    def __init__(self, api: WorkerApi, job_id: str, log_path: Path) -> None:
        self.api, self.job_id, self.log_path = api, job_id, log_path
        self.offset = 0
        self.cancel_requested = False

    def ship(self) -> None:
        while True:
            try:
                with open(self.log_path, "rb") as f:
                    f.seek(self.offset)
                    data = f.read(MAX_CHUNK)
            except FileNotFoundError:
                data = b""
            # Cut at a complete UTF-8 character: the rest goes with the next chunk.
            cut = len(data)
            while cut and (data[cut - 1] & 0xC0) == 0x80:
                cut -= 1
            if cut and data[cut - 1] >= 0xC0:
                cut -= 1
            chunk = data[:cut] if len(data) == MAX_CHUNK else data
            answer = self.api.job_log(
                self.job_id, self.offset, chunk.decode("utf-8", "replace"), retry_for=30
            )
            self.cancel_requested = answer.cancel_requested
            self.offset = max(self.offset + len(chunk), answer.accepted_until)
            if len(data) < MAX_CHUNK:
                return


def run_job(settings: Settings, job_id: str) -> str | None:
    api = shared_api(settings.effective_api_url, settings.secret("worker_token"))
    try:
        claim = api.job_claim(job_id, worker_name(settings))
    except Conflict as exc:
        log.info("job %s not claimed (%s); dropping", job_id, exc)
        return None
    paths = JobPaths(Path(claim.job_dir))
    paths.job_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if claim.attempt > 1:
        # Tried again after a lost worker: what the last attempt left is not trusted.
        note(paths.log, f"attempt {claim.attempt}: tried again after its worker was lost")
        paths.result.unlink(missing_ok=True)
        if claim.kind == "tokenizer":
            shutil.rmtree(paths.output, ignore_errors=True)  # a fresh output
    shipper = JobShipper(api, job_id, paths.log)
    status, reason, result = "failed", None, None
    try:
        argv = tool_argv(settings, claim, paths)
        note(paths.log, f"job {job_id} ({claim.kind}) on {worker_name(settings)}")
        env = child_env(use_cpu=True, nproc=1, concurrency=1, lease=None, roots=settings.roots)
        env.update(tool_env(settings, claim.kind, claim.hub_token))
        started = time.monotonic()
        proc = launcher.start(argv, paths.log, env, cwd=ROOT)
        # The tool's whole tree (its own children may leave its session): all of it ends.
        tree = ProcessTree(proc.pid)
        try:
            while proc.poll() is None:
                time.sleep(SHIP_SECONDS)
                tree.refresh()
                shipper.ship()
                if shipper.cancel_requested:
                    tree.stop(settings.cancel_grace_seconds, signal.SIGTERM, launcher=False)
            code = proc.wait()
        finally:
            tree.stop(settings.cancel_grace_seconds, signal.SIGKILL, launcher=False)
        elapsed = time.monotonic() - started
        if shipper.cancel_requested:
            status, reason = "cancelled", "cancelled on request"
        elif code == 0:
            write_files(settings, claim)
            result = result_of(settings, claim, paths)
            status, reason = "succeeded", f"done in {elapsed:.1f} s"
        else:
            line = last_error_line(paths.log) or f"exit code {code}"
            status, reason = "failed", line[:300]
    except (OSError, ValueError, KeyError) as exc:
        status, reason = "failed", f"{type(exc).__name__}: {exc}"[:300]
    note(paths.log, f"{status}: {reason}")
    try:
        shipper.ship()
        api.job_status(job_id, status, reason=reason, result=result)
    except (ApiUnavailable, Conflict) as exc:
        log.error("job %s: could not report %s: %s", job_id, status, exc)
    return status
