"""Jobs: work a worker does that is not a training run (merge a LoRA checkpoint, extend a
tokenizer, scan a dataset, generate from a checkpoint, clean a corpus into a new dataset).
Queued, claimed, logged, cancelled and shown like runs, each with its own kind and typed
parameters; the result is a JSON document the job writes when it succeeds.

Both sides use this module: the API validates a job's parameters with ``JOB_PARAMS`` and the
worker turns them into the argv of ``python -m worker.<tool>`` (``worker/agent/jobs.py``).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cpt_contract.clean import CleanStep
from cpt_contract.corpus import TextColumn
from cpt_contract.limits import INT32
from cpt_contract.text import TxtDocuments

#: The Celery task that runs one job (the message carries only the job id: the worker claims it).
RUN_JOB_TASK = "worker.tasks.run_job"

JobKind = Literal[
    "merge",
    "tokenizer",
    "scan",
    "generate",
    "clean",
    "download",
    "import",
    "evaluate",
    "export",
    "publish",
]

Path_ = Annotated[str, Field(min_length=1, max_length=1000)]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MergeParams(_Params):
    """Merge a LoRA checkpoint of a run into its base model (a plain HF model directory)."""

    run_id: str = Field(max_length=32)
    checkpoint: str = Field(pattern=r"^checkpoint-\d{1,12}$")


class ExportParams(_Params):
    """Export a run's merged model (or full-weight checkpoint) for serving: safetensors shards
    with their index, generation_config.json, the tokenizer and the model card; then score the
    export and its source on the run's evaluation sets (``worker/export.py``)."""

    run_id: str = Field(max_length=32)
    checkpoint: str = Field(pattern=r"^checkpoint-\d{1,12}$")
    dtype: Literal["bfloat16", "float16", "float32"] = Field(default="bfloat16", title="Dtype")
    max_shard_size: str = Field(
        default="2GB",
        pattern=r"^[1-9][0-9]{0,5}(KB|MB|GB)$",
        title="Largest shard",
        description="e.g. 2GB, 500MB",
    )


class TokenizerParams(_Params):
    """Extend a base tokenizer with pieces trained on a new language's text, then measure it."""

    base: Path_ = Field(
        title="Base tokenizer",
        description="A tokenizer directory, or a model directory that has its tokenizer.",
        json_schema_extra={"picker": "tokenizer"},
    )
    corpus: list[Path_] = Field(
        min_length=1,
        max_length=64,
        title="Training text",
        description="Text files or directories of the new language.",
        json_schema_extra={"picker": "dataset"},
    )
    model_type: Literal["bpe", "unigram", "char", "word"] = Field(
        default="bpe", title="SentencePiece model"
    )
    vocab_size: int = Field(default=8000, ge=100, le=256_000, title="New vocabulary size")
    character_coverage: float = Field(default=0.9995, gt=0, le=1, title="Character coverage")
    max_new: int | None = Field(
        default=None, ge=1, le=256_000, title="At most this many new tokens"
    )
    eval_text: list[Path_] = Field(
        default_factory=list,
        max_length=64,
        title="Held-out text",
        description="Files (one per language) to measure fertility on; empty: the training text.",
    )
    name: str = Field(default="", max_length=200, title="Name")


class ScanParams(_Params):
    """Count what a dataset holds (files, documents, characters, languages, tokens, blocks)."""

    paths: list[Path_] = Field(
        min_length=1,
        max_length=64,
        title="Files or directories",
        json_schema_extra={"picker": "dataset"},
    )
    tokenizer: Path_ | None = Field(
        default=None,
        title="Tokenizer",
        description="Count tokens and blocks with it (needs a block size).",
        json_schema_extra={"picker": "tokenizer"},
    )
    block_size: int | None = Field(default=None, ge=8, le=1_048_576, title="Block size")
    txt_documents: TxtDocuments = Field(
        default="line",
        title="Documents in .txt files",
        description="line: one per line; blank_line: one per paragraph; file: the whole file.",
    )
    text_column: TextColumn = "text"

    @model_validator(mode="after")
    def _tokenizer_needs_block_size(self) -> ScanParams:
        if self.tokenizer and not self.block_size:
            raise ValueError("block_size: counting blocks with a tokenizer needs a block size")
        return self


class GenerateParams(_Params):
    """Continue a prompt with a run's checkpoint ("Try it"), on the worker that holds it."""

    run_id: str = Field(max_length=32)
    checkpoint: str = Field(pattern=r"^checkpoint-\d{1,12}$")
    prompt: str = Field(min_length=1, max_length=4000, title="Prompt")
    max_new_tokens: int = Field(default=64, ge=1, le=512, title="New tokens")
    mode: Literal["greedy", "sampled"] = Field(default="greedy", title="Decoding")
    temperature: float = Field(default=0.8, gt=0, le=5, title="Temperature (sampled)")
    seed: int = Field(default=0, ge=0, le=INT32, title="Seed (sampled)")


#: A harness task's name as its registry spells it (``belebele_eng_Latn``, ``xcopa_et``).
HARNESS_TASK_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$"


class EvaluateParams(_Params):
    """Score a run's checkpoint on lm-evaluation-harness tasks (a LoRA checkpoint through its
    adapter, no merge): the user's task files (the harness's YAML over local data) and/or the
    harness's own tasks by name (they download their data: the worker needs network access)."""

    run_id: str = Field(max_length=32)
    checkpoint: str = Field(pattern=r"^checkpoint-\d{1,12}$")
    task_files: list[Path_] = Field(
        default_factory=list,
        max_length=32,
        title="Task files",
        description="YAML task files in the harness's format, or folders of them, over local data.",
    )
    tasks: list[Annotated[str, Field(pattern=HARNESS_TASK_PATTERN)]] = Field(
        default_factory=list,
        max_length=32,
        title="Harness tasks",
        description="By name, e.g. belebele_eng_Latn, xnli_en, xcopa_et, xstorycloze_en.",
    )
    limit: int | None = Field(
        default=None, ge=1, le=1_000_000, title="Documents per task", description="Empty: all."
    )
    num_fewshot: int | None = Field(default=None, ge=0, le=64, title="Few-shot examples")
    batch_size: int = Field(default=8, ge=1, le=512, title="Batch size")

    @model_validator(mode="after")
    def _some_task(self) -> EvaluateParams:
        if not self.task_files and not self.tasks:
            raise ValueError("task_files: name at least one task file or harness task")
        return self


class CleanParams(_Params):
    """Clean one or more sources into a new dataset directory (steps in the order given)."""

    sources: list[Path_] = Field(
        min_length=1,
        max_length=64,
        title="Sources",
        description="Files or directories of text (.txt, .jsonl).",
        json_schema_extra={"picker": "dataset"},
    )
    name: str = Field(
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        title="New dataset name",
        description="The directory made under the datasets root; it must not exist yet.",
    )
    output_root: Path_ | None = Field(
        default=None,
        title="Datasets root",
        description="Where the new dataset goes; default: the datasets folder of the data dir.",
    )
    steps: list[CleanStep] = Field(min_length=1, max_length=16, title="Steps")
    tokenizer: Path_ | None = Field(
        default=None,
        title="Tokenizer",
        description="Count tokens with it before and after each step.",
        json_schema_extra={"picker": "tokenizer"},
    )
    examples: int = Field(default=5, ge=0, le=50, title="Removed examples per step")
    txt_documents: TxtDocuments = Field(
        default="line",
        title="Documents in .txt files",
        description="line: one per line; blank_line: one per paragraph; file: the whole file.",
    )


#: A Hub repo id (``org/name``) as the Hub accepts it.
HUB_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$"


def download_dir_name(repo_id: str, revision: str) -> str:
    """``org/name`` at ``main`` → ``org--name``; another revision is part of the name. The
    directory a download lands in under the models (datasets) root, and how a run whose model is
    a Hub id finds it."""
    name = repo_id.replace("/", "--")
    return name if revision == "main" else f"{name}--{revision.replace('/', '-')}"


def is_hub_id(value: str) -> bool:
    return re.fullmatch(HUB_ID_PATTERN, value) is not None


#: How a path field names a Hub repo instead (``hf:org/name``): a bare ``org/name`` is a
#: relative path, which the roots refuse, so the two never mix.
HUB_PREFIX = "hf:"


def hub_id_of(value: str | None) -> str | None:
    """``hf:org/name`` → ``org/name``; None for anything else."""
    if not value or not value.startswith(HUB_PREFIX):
        return None
    repo = value[len(HUB_PREFIX) :]
    return repo if is_hub_id(repo) else None


class DownloadParams(_Params):
    """Download a model (or a dataset's files) from the Hub into the models (datasets) root: a
    temp dir renamed into place when complete; a rerun resumes a cancelled one."""

    repo_id: str = Field(
        pattern=HUB_ID_PATTERN,
        max_length=200,
        title="Hub id",
        description="org/name, e.g. HuggingFaceTB/SmolLM2-135M.",
    )
    repo_type: Literal["model", "dataset"] = Field(default="model", title="Kind")
    revision: str = Field(
        default="main",
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9_./-]*$",
        title="Revision",
        description="A branch, tag or commit.",
    )
    skip: list[Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^-\x00]")]] = Field(
        default_factory=list,
        max_length=32,
        title="Files to skip",
        description="Glob patterns, e.g. *.bin, original/*, *.gguf.",
    )
    config: str | None = Field(
        default=None,
        max_length=200,
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$",
        title="Dataset config",
        description="A dataset's subset (its files under <config>/ or data/<config>/).",
    )
    split: str | None = Field(
        default=None,
        max_length=100,
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$",
        title="Dataset split",
        description="Only the files of this split (e.g. train).",
    )
    text_column: TextColumn | None = Field(default=None, title="Dataset text column")

    @model_validator(mode="after")
    def _dataset_fields(self) -> DownloadParams:
        if self.repo_type == "model" and (self.config or self.split or self.text_column):
            raise ValueError("config: config, split and text_column are for datasets")
        return self

    def dir_name(self) -> str:
        return download_dir_name(self.repo_id, self.revision)

    def allow(self) -> list[str]:
        """A dataset's config/split as file globs (the Hub's parquet and script-free layouts)."""
        if self.repo_type != "dataset" or not (self.config or self.split):
            return []
        conf, split = self.config or "*", self.split or "*"
        return [
            f"{conf}/{split}*",
            f"{conf}/{split}/*",
            f"data/{conf}/{split}*",
            f"data/{conf}/{split}/*",
            *([f"data/{split}-*", f"data/{split}/*", f"{split}*"] if not self.config else []),
            "README.md",
        ]


class ImportParams(_Params):
    """Import a GGUF file (as Ollama or LM Studio keep models) as a plain HF model directory in
    the models root (dequantized)."""

    gguf: Path_ = Field(
        title="GGUF file",
        description="A .gguf file under the allowed roots.",
        pattern=r"(?i)\.gguf$",
    )
    name: str = Field(
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        title="Name",
        description="The model's directory name in the models root.",
    )
    dtype: Literal["float32", "bfloat16"] = Field(default="float32", title="Weights dtype")


class PublishParams(_Params):
    """Publish a run's merged model of a checkpoint (else the checkpoint's full weights) with
    its tokenizer and model card to a Hub repo (``worker/hub/publish.py``)."""

    run_id: str = Field(max_length=32)
    checkpoint: str = Field(pattern=r"^checkpoint-\d{1,12}$")
    repo_id: str = Field(
        pattern=HUB_ID_PATTERN, title="Repo", description="org/name on the Hub (created if new)"
    )
    private: bool = Field(default=True, title="Private")


JOB_PARAMS: dict[str, type[_Params]] = {
    "merge": MergeParams,
    "tokenizer": TokenizerParams,
    "scan": ScanParams,
    "generate": GenerateParams,
    "clean": CleanParams,
    "download": DownloadParams,
    "import": ImportParams,
    "evaluate": EvaluateParams,
    "export": ExportParams,
    "publish": PublishParams,
}
#: Parameters that are paths a user chose (checked against the allowed roots by the API).
PATH_PARAMS: dict[str, tuple[str, ...]] = {
    "merge": (),
    "tokenizer": ("base", "corpus", "eval_text"),
    "scan": ("paths", "tokenizer"),
    "generate": (),
    "clean": ("sources", "tokenizer"),
    "download": (),
    "import": ("gguf",),
    "evaluate": ("task_files",),
    "export": (),
    "publish": (),
}
#: Kinds tried once more when their worker is lost: running them again gives the same result
#: (a scan, a tokenizer into a fresh output, a download or a clean that resume, an import).
RETRIED_KINDS = frozenset({"scan", "tokenizer", "download", "clean", "import"})
#: Kinds that act on one checkpoint of a run (the API checks that the checkpoint exists).
CHECKPOINT_KINDS = ("merge", "generate", "evaluate", "export", "publish")
#: The line a generate job prints before the continuation, so a reader of its log can stream it.
GENERATE_MARKER = "--- continuation ---"
