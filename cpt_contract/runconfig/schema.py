"""The one run-config schema.

It drives API validation (422 with the field's path), the OpenAPI schema, the frontend's
form (``GET /api/schema/run-config``) and the torchrun argv (``cpt_contract.runconfig.argv``).
It imports no torch, so the API image stays small.

Field names equal the ``worker/pretrain.py`` flag they become, so the mapping is mechanical.
UI hints ride in ``json_schema_extra``: ``advanced`` (collapsed by default), ``picker``
(``model``/``tokenizer``/``dataset``: the form offers files found under the allowed roots).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic.config import JsonDict

from cpt_contract.corpus import TextColumn
from cpt_contract.limits import DEFAULT_MAX_RESTARTS, DEFAULT_QUEUE, INT32, QUEUE_PATTERN
from cpt_contract.runconfig.extra_args import MAX_ITEMS, check_extra_args
from cpt_contract.slurm import TIME_PATTERN
from cpt_contract.text import DEFAULT_EVAL_CHARACTERS, TxtDocuments
from cpt_contract.trackers import TRACKERS, Tracker


def _adv(**extra: Any) -> dict[str, Any]:
    return {"advanced": True, **extra}


# How a field becomes ``pretrain.py`` flags (``cpt_contract/runconfig/argv.py`` reads this; the
# default is ``--<field name> <value>``, left out when the value is empty). Adding a training flag
# is one field here: the argv, the form and the validation follow from it.
ARGV = "argv"
#: The largest integer the database's columns hold: a wilder value is a 422 at its field.
MAX_INT = INT32
#: ``--name`` when true, nothing when false (the flag's own default is false).
SWITCH: JsonDict = {ARGV: "switch"}
#: ``--name False`` when false, nothing when true (the flag's own default is true).
NEGATABLE: JsonDict = {ARGV: "negatable"}
#: Not a ``pretrain.py`` flag (it shapes the launcher or the panel instead).
NOT_A_FLAG: JsonDict = {ARGV: "none"}
#: LoRA's own flags go to the script only for LoRA runs.
LORA_ONLY: JsonDict = {"argv_only_for": "lora"}


class _Section(BaseModel):
    # Unknown keys are an error, so a typo in a field name never silently does nothing.
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_leading_dash(cls, value: object) -> object:
        """A text value never begins with ``-``: it travels glued to its flag (``--name=value``),
        and argparse still mangles a bare ``--`` there; no path, revision or name needs one."""
        if isinstance(value, str) and value.startswith("-"):
            raise ValueError(f"must not begin with '-' (got {value[:40]!r})")
        return value


class ModelSection(_Section):
    """Base model, config and tokenizer (the seed's model arguments)."""

    model_name_or_path: str | None = Field(
        max_length=1000,
        default=None,
        title="Base model",
        description="Directory of an HF model to continue from, or a Hub id written "
        "hf:org/name: it is downloaded into the models root first and the run waits for it. "
        "Empty: train from scratch.",
        json_schema_extra={"picker": "model"},
    )
    tokenizer_name_or_path: str | None = Field(
        max_length=1000,
        default=None,
        title="Tokenizer",
        description="Directory of the (extended) tokenizer. Empty: the model's own.",
        json_schema_extra={"picker": "tokenizer"},
    )
    model_type: Literal["bpe", "unigram", "char", "word"] | None = Field(
        default=None,
        title="Tokenizer type when training from scratch",
        description="SentencePiece model type used when neither a model nor a tokenizer is given.",
        json_schema_extra=_adv(),
    )
    config_name: str | None = Field(
        max_length=1000,
        default=None,
        title="Config",
        description="Config name or path if not the same as the model.",
        json_schema_extra=_adv(),
    )
    config_overrides: str | None = Field(
        max_length=2000,
        default=None,
        title="Config overrides",
        description="When training from scratch, e.g. hidden_size=64,num_hidden_layers=2.",
        json_schema_extra=_adv(),
    )
    torch_dtype: Literal["auto", "bfloat16", "float16", "float32"] | None = Field(
        default=None,
        title="Load dtype",
        description="dtype the weights are loaded in.",
        json_schema_extra=_adv(),
    )
    new_embeddings_init: Literal["subtoken_mean", "mean_resizing", "random"] = Field(
        default="subtoken_mean",
        title="New embedding rows",
        description="How rows for tokens the base lacks start: the mean of the base pieces of "
        "the token's text (subtoken_mean), transformers' mean resizing, or random.",
    )
    use_fast_tokenizer: bool = Field(
        default=True, title="Fast tokenizer", json_schema_extra=_adv(**NEGATABLE)
    )
    model_revision: str = Field(
        max_length=200, default="main", title="Model revision", json_schema_extra=_adv()
    )


class DataSource(_Section):
    """One source of a mixture: blocks are drawn by weight (deterministic with the seed)."""

    path: str = Field(min_length=1, max_length=1000, json_schema_extra={"picker": "dataset"})
    weight: float = Field(default=1.0, gt=0, le=1e6)
    name: str | None = Field(default=None, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    #: None: the engine's default column, ``text`` (left out of the argv).
    text_column: TextColumn | None = None
    role: Literal["replay"] | None = Field(
        default=None,
        description="replay: text of the base model's language, mixed in against forgetting; "
        "drawn at data.replay_share of the training tokens when that is set.",
    )


#: A name that becomes part of a metric key (``eval_<name>_bits_per_char``).
SetName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")]


class EvalSet(_Section):
    """A held-out set: evaluated at every evaluation, never trained on."""

    path: str = Field(
        min_length=1,
        max_length=1000,
        description="A corpus file (.txt, .jsonl, .parquet, gzip/zstd compressed) or a "
        "directory of them, or a dataset saved by datasets.",
        json_schema_extra={"picker": "dataset"},
    )
    #: None: the engine's default column, ``text`` (left out of the argv).
    text_column: TextColumn | None = None
    role: Literal["retain", "target"] | None = Field(
        default=None,
        description="retain: the base model's language (its change since step 0 is the "
        "forgetting); target: the language being learned.",
    )
    max_documents: int | None = Field(
        default=None,
        ge=1,
        le=MAX_INT,
        description="Score only the set's first N documents (the same text for every "
        "tokenizer and run).",
    )
    max_characters: int | None = Field(
        default=None,
        ge=1,
        le=MAX_INT,
        description="Score only the set's first N characters (Unicode code points; the last "
        "document cut). Neither limit: data.eval_max_characters.",
    )


def _path_is_a_set(value: Any) -> Any:
    """``"kn": "/data/kn.txt"`` is short for ``"kn": {"path": "/data/kn.txt"}``: one shape to
    validate, so a bad value gets one error at its field, not one per union branch."""
    if isinstance(value, dict) and "max_eval_samples" in value:
        # The old budget counted token windows: two tokenizers scored different text.
        raise ValueError(
            "max_eval_samples (token windows) is no longer a set's budget, as it scored "
            "different text for different tokenizers: give max_documents or max_characters"
        )
    return {"path": value} if isinstance(value, str) else value


EvalSetSpec = Annotated[EvalSet, BeforeValidator(_path_is_a_set)]


class DataSection(_Section):
    """Training text (the seed's data arguments)."""

    dataset_dir: str | None = Field(
        max_length=1000,
        default=None,
        title="Dataset directory",
        description='Directory of .txt and .jsonl ({"text": ...}) files, .parquet files, '
        "any of them gzip or zstd compressed (.jsonl.zst …), or a dataset saved by datasets.",
        json_schema_extra={"picker": "dataset"},
    )
    text_column: TextColumn | None = Field(
        default=None,
        title="Text column",
        description="The .jsonl field or .parquet/dataset column that holds the text of the "
        "dataset directory, train file and validation file. Empty: text.",
        json_schema_extra=_adv(),
    )
    train_file: str | None = Field(
        max_length=1000,
        default=None,
        title="Train file",
        description="A single text file.",
        json_schema_extra=_adv(),
    )
    validation_file: str | None = Field(
        max_length=1000,
        default=None,
        title="Validation file",
        description="Held-out text file: the eval set named validation (never trained on).",
        json_schema_extra=_adv(),
    )
    validation_split_percentage: float = Field(
        default=0.05,
        ge=0,
        lt=1,
        title="Validation split",
        description="Fraction of the blocks held out for evaluation (0.05 = 5%).",
    )
    block_size: int | None = Field(
        default=None,
        le=MAX_INT,
        ge=8,
        title="Block size",
        description="Tokens per training sequence. Empty: min(1024, the model's maximum).",
    )
    packing: Literal["eos", "classic"] = Field(
        default="eos",
        title="Packing",
        description="eos: an EOS token between documents, blocks start on a character; "
        "classic: the seed's plain concatenation.",
        json_schema_extra=_adv(),
    )
    data_sources: list[DataSource] | None = Field(
        default=None,
        max_length=64,
        title="Mixture sources",
        description="Extra sources mixed by weight, e.g. replay text of the base's language "
        "against forgetting; the dataset directory (or train file) is one more source.",
        json_schema_extra=_adv(**{ARGV: "json"}),
    )
    replay_share: float | None = Field(
        default=None,
        ge=0,
        lt=1,
        title="Replay share",
        description="Fraction of the training tokens drawn from the mixture sources whose role "
        "is replay (the base model's language), e.g. 0.2; the other sources (the dataset "
        "directory included) share the rest by weight. Empty: every source by its weight.",
    )
    eval_sets: dict[SetName, EvalSetSpec] | None = Field(
        default=None,
        max_length=16,
        title="Held-out sets",
        description='Named held-out sets, e.g. {"kn": "/data/kn-heldout.txt", "en": {"path": '
        '"/data/en.txt", "role": "retain"}}: each reports eval_<name>_bits_per_char at every '
        "evaluation; a file that is also training data is left out of training.",
        json_schema_extra={ARGV: "json"},
    )
    eval_max_characters: int = Field(
        default=DEFAULT_EVAL_CHARACTERS,
        ge=1,
        le=MAX_INT,
        title="Eval characters per set",
        description="Each held-out set without its own max_documents/max_characters scores "
        "this many characters (Unicode code points) from its start: the same text for every "
        "tokenizer and run, so bits/char compare.",
        json_schema_extra=_adv(),
    )
    max_train_samples: int | None = Field(default=None, le=MAX_INT, ge=1, json_schema_extra=_adv())
    max_eval_samples: int | None = Field(
        default=None,
        le=MAX_INT,
        ge=1,
        description="Blocks of the validation split, or documents of the validation file, "
        "evaluated.",
        json_schema_extra=_adv(),
    )
    streaming: bool = Field(
        default=False,
        description="Stream the data (needs max_steps).",
        json_schema_extra=_adv(**SWITCH),
    )
    txt_documents: TxtDocuments = Field(
        default="line",
        title="Documents in .txt files",
        description="How a .txt file is cut into documents (training, held-out sets, scan): "
        "line: one per line; blank_line: one per paragraph; file: the whole file.",
    )
    keep_linebreaks: bool = Field(default=True, json_schema_extra=_adv(**NEGATABLE))
    preprocessing_num_workers: int | None = Field(
        default=None, le=MAX_INT, ge=1, json_schema_extra=_adv()
    )
    overwrite_cache: bool = Field(default=False, json_schema_extra=_adv(**SWITCH))


#: The seed's (and pretrain.py's) modules trained in full with LoRA.
DEFAULT_MODULES_TO_SAVE = "embed_tokens,lm_head"


class MethodSection(_Section):
    """LoRA or full weights (the seed's custom training arguments)."""

    finetuning_type: Literal["lora", "full"] = Field(
        default="lora", title="Method", description="LoRA adapters or all weights."
    )
    trainable: str = Field(
        max_length=1000,
        default="q_proj,v_proj",
        title="LoRA target modules",
        description="Comma-separated module names that get LoRA adapters.",
        pattern=r"^[A-Za-z0-9_.]+(,[A-Za-z0-9_.]+)*$",
        json_schema_extra=LORA_ONLY,
    )
    lora_rank: int = Field(default=8, ge=1, le=1024, title="LoRA rank", json_schema_extra=LORA_ONLY)
    lora_alpha: float = Field(
        default=32.0, gt=0, le=1e6, title="LoRA alpha", json_schema_extra=LORA_ONLY
    )
    lora_dropout: float = Field(
        default=0.05, ge=0, lt=1, title="LoRA dropout", json_schema_extra=LORA_ONLY
    )
    modules_to_save: str = Field(
        max_length=1000,
        default=DEFAULT_MODULES_TO_SAVE,
        title="Modules trained in full",
        description="Comma-separated; needed when the vocabulary is extended. Empty: none "
        "(LoRA adapters only).",
        pattern=r"^([A-Za-z0-9_.]+(,[A-Za-z0-9_.]+)*)?$",
    )

    @field_validator("modules_to_save", mode="before")
    @classmethod
    def _null_is_the_default(cls, value: Any) -> Any:
        # Configs saved before "" meant "none" said null for the script's default.
        return DEFAULT_MODULES_TO_SAVE if value is None else value

    peft_path: str | None = Field(
        max_length=1000,
        default=None,
        title="Continue from adapter",
        description="Directory of an existing LoRA adapter.",
        json_schema_extra=_adv(picker="adapter", **LORA_ONLY),
    )


#: What a stage of ``training.stages`` trains (worker/training/stages.py applies it).
StageMethod = Literal["new_embeddings", "lora", "full"]


class TrainingStage(_Section):
    """One stage of a staged run: its own method, steps and learning rate, one after another
    in one run (one metrics stream; the steps count on across stages)."""

    method: StageMethod | None = Field(
        default=None,
        description="new_embeddings: only the rows the extended tokenizer adds to the input and "
        "output embeddings (the base rows frozen by a gradient mask); lora or full: as "
        "method.finetuning_type, which must then be the same. Empty: method.finetuning_type.",
    )
    max_steps: int = Field(ge=1, le=MAX_INT, description="Optimizer steps of this stage.")
    learning_rate: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="Peak learning rate of this stage (warm-up and schedule restart inside "
        "each stage). Empty: training.learning_rate.",
    )
    name: str | None = Field(default=None, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")


class TrainingSection(_Section):
    """Hyperparameters (HF TrainingArguments)."""

    num_train_epochs: float = Field(default=1.0, gt=0, le=1e6, title="Epochs")
    max_steps: int = Field(
        default=-1,
        le=MAX_INT,
        ge=-1,
        title="Max steps",
        description="-1: run the epochs; > 0 overrides them.",
    )
    stages: list[TrainingStage] | None = Field(
        default=None,
        min_length=1,
        max_length=8,
        title="Stages",
        description='Train in stages, one after another in one run, e.g. [{"method": '
        '"new_embeddings", "max_steps": 200, "learning_rate": 1e-3}, {"max_steps": 800}]: '
        "first only the new embedding rows, then the run's method. The steps add up to "
        "max_steps (set from them when max_steps is -1). Not with DeepSpeed.",
        json_schema_extra=_adv(**{ARGV: "json"}),
    )
    per_device_train_batch_size: int = Field(
        default=1, ge=1, le=MAX_INT, title="Micro-batch per device"
    )
    per_device_eval_batch_size: int | None = Field(
        default=None,
        le=MAX_INT,
        ge=1,
        description="Empty: the training micro-batch.",
        json_schema_extra=_adv(),
    )
    gradient_accumulation_steps: int = Field(
        default=8, ge=1, le=MAX_INT, title="Gradient accumulation"
    )
    learning_rate: float = Field(default=2e-4, gt=0, le=1, title="Learning rate")
    lr_scheduler_type: Literal[
        "linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup"
    ] = Field(default="cosine", title="LR schedule")
    warmup_ratio: float = Field(default=0.05, ge=0, lt=1, title="Warm-up ratio")
    weight_decay: float = Field(default=0.01, ge=0, le=1e6, title="Weight decay")
    max_grad_norm: float = Field(default=1.0, gt=0, le=1e6, json_schema_extra=_adv())
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        default="bf16",
        title="Precision",
        description="fp16 needs a GPU; bf16 works on CPU too.",
        json_schema_extra={ARGV: {"fp32": [], "bf16": ["--bf16"], "fp16": ["--fp16"]}},
    )
    gradient_checkpointing: bool = Field(
        default=True, title="Gradient checkpointing", json_schema_extra=SWITCH
    )
    logging_steps: int = Field(default=10, le=MAX_INT, ge=1, title="Log every N steps")
    save_steps: int = Field(default=200, le=MAX_INT, ge=1, title="Checkpoint every N steps")
    save_total_limit: int | None = Field(default=3, le=MAX_INT, ge=1, title="Checkpoints kept")
    report_to: list[Tracker] = Field(
        default_factory=list,
        max_length=len(TRACKERS),
        title="Also report to",
        description="Experiment trackers (mlflow, wandb, tensorboard, trackio), with the "
        "settings kept in the panel's Settings; the panel's own charts work either way.",
        json_schema_extra={ARGV: "csv"},
    )
    eval_steps: int | None = Field(
        default=None,
        le=MAX_INT,
        ge=1,
        title="Evaluate every N steps",
        description="Empty: evaluate at the end only.",
        # Evaluating during training needs the strategy too; the value alone would be ignored.
        json_schema_extra={"argv_with": ["--do_eval", "--eval_strategy", "steps"]},
    )
    eval_at_start: bool = Field(
        default=True,
        title="Evaluate at step 0",
        description="Evaluate the base model before the first update: every curve starts at "
        "the baseline.",
        json_schema_extra=NEGATABLE,
    )
    eval_prompts: (
        dict[
            SetName,
            Annotated[
                list[Annotated[str, StringConstraints(min_length=1, max_length=2000)]],
                Field(max_length=32),
            ],
        ]
        | None
    ) = Field(
        default=None,
        max_length=16,
        title="Sample prompts",
        description="Prompts continued at every evaluation, greedy and sampled (fixed seed), "
        'by group, e.g. {"kn": ["ಕನ್ನಡ ಒಂದು"], "en": ["The capital of"]}.',
        json_schema_extra={ARGV: "json"},
    )
    sample_max_new_tokens: int = Field(
        default=48, ge=1, le=1024, title="Sample length", description="New tokens per sample."
    )
    seed: int = Field(default=42, ge=0, le=MAX_INT, title="Seed")
    ddp_timeout: int = Field(default=30000, le=MAX_INT, ge=1, json_schema_extra=_adv())
    debug_mode: bool = Field(default=False, json_schema_extra=_adv(**SWITCH))
    divergence_factor: float = Field(
        default=5.0,
        ge=0,
        le=1000,
        title="Divergence factor",
        description="Stop the run as diverged when its logged loss stays above this x its best "
        "for divergence_logs logs in a row (0: off; NaN/inf is always caught).",
        json_schema_extra=_adv(),
    )
    divergence_logs: int = Field(
        default=5,
        ge=1,
        le=10_000,
        title="Logs for divergence and dead training",
        description="Logs in a row for the divergence factor, and for the warning that the "
        "model stopped learning (a zero gradient norm or a constant loss).",
        json_schema_extra=_adv(),
    )
    max_restarts: int = Field(
        default=DEFAULT_MAX_RESTARTS,
        ge=0,
        le=100,
        title="Automatic restarts",
        description="A run interrupted by a lost or stopped worker, a stall or a rank crash "
        "resumes by itself from its newest checkpoint, up to this many times.",
        json_schema_extra=_adv(**NOT_A_FLAG),
    )
    extra_args: list[str] = Field(
        default_factory=list,
        max_length=MAX_ITEMS,
        title="Extra pretrain.py flags",
        description='Further flags passed through as argv items, e.g. ["--optim", "adamw_torch"]. '
        "Only scalar TrainingArguments flags that no field sets and that take no path "
        "(cpt_contract/runconfig/extra_args.py), each once.",
        json_schema_extra=_adv(**NOT_A_FLAG),
    )

    @field_validator("report_to")
    @classmethod
    def _once_each(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("name each tracker once")
        return value

    @field_validator("divergence_factor")
    @classmethod
    def _factor(cls, value: float) -> float:
        if value != 0 and value <= 1:
            raise ValueError("must be above 1 (a loss above its best), or 0 to switch it off")
        return value

    @field_validator("extra_args")
    @classmethod
    def _only_allowed_flags(cls, items: list[str]) -> list[str]:
        return check_extra_args(items)


DeepSpeedPreset = Literal["none", "zero2", "zero2_offload", "zero3", "zero3_offload"]

#: preset -> file under worker/ds_configs/ (the seed's file name for ZeRO-2).
DEEPSPEED_FILES: dict[str, str] = {
    "zero2": "ds_zero2_no_offload.json",
    "zero2_offload": "ds_zero2_offload.json",
    "zero3": "ds_zero3.json",
    "zero3_offload": "ds_zero3_offload.json",
}


class LaunchSection(_Section):
    """Where and how torchrun starts."""

    deepspeed: DeepSpeedPreset = Field(
        default="zero2", title="DeepSpeed", json_schema_extra=NOT_A_FLAG
    )
    nnodes: int = Field(default=1, ge=1, le=64, title="Nodes", json_schema_extra=NOT_A_FLAG)
    nproc_per_node: int = Field(
        default=1, ge=1, le=16, title="Processes (GPUs) per node", json_schema_extra=NOT_A_FLAG
    )
    queue: str = Field(
        default=DEFAULT_QUEUE,
        title="Worker queue",
        description="The GPU box (worker queue) that takes this run.",
        pattern=QUEUE_PATTERN,
        json_schema_extra=NOT_A_FLAG,
    )
    rdzv_endpoint: str | None = Field(
        max_length=300,
        default=None,
        title="Rendezvous endpoint",
        description="host:port of node 0 for multi-node runs (c10d). On a Slurm queue: empty "
        "(the first node of the allocation).",
        pattern=r"^[A-Za-z0-9_.-]+:[0-9]{1,5}$",
        json_schema_extra=_adv(**NOT_A_FLAG),
    )
    partition: str | None = Field(
        default=None,
        title="Slurm partition",
        description="Slurm queues only. Empty: the worker's partition.",
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        json_schema_extra=_adv(**NOT_A_FLAG),
    )
    time_limit: str | None = Field(
        default=None,
        title="Slurm time limit",
        description="Slurm queues only: minutes, H:M:S or D-H:M:S. At the limit the run saves a "
        "checkpoint and is resumed in a new job. Empty: the worker's default.",
        pattern=TIME_PATTERN,
        json_schema_extra=_adv(**NOT_A_FLAG),
    )


class RunConfig(_Section):
    """Everything needed to launch one continual-pretraining run."""

    model: ModelSection = Field(default_factory=ModelSection, title="Model")
    data: DataSection = Field(default_factory=DataSection, title="Data")
    method: MethodSection = Field(default_factory=MethodSection, title="Method")
    training: TrainingSection = Field(default_factory=TrainingSection, title="Training")
    launch: LaunchSection = Field(default_factory=LaunchSection, title="Launch")

    @model_validator(mode="after")
    def _check_combinations(self) -> RunConfig:
        if (
            self.data.dataset_dir is None
            and self.data.train_file is None
            and not self.data.data_sources
        ):
            raise ValueError(
                "data: set data.dataset_dir (a directory of .txt/.jsonl files) or data.train_file"
            )
        self._check_stages()
        self._check_replay()
        if self.data.streaming and self.training.max_steps <= 0:
            raise ValueError("training.max_steps: streaming needs max_steps > 0")
        if (
            self.data.eval_sets
            and "validation" in self.data.eval_sets
            and (self.data.validation_file or self.data.validation_split_percentage > 0)
        ):
            raise ValueError(
                "data.eval_sets: the name 'validation' is the validation_file / "
                "validation_split_percentage set; name this set differently"
            )
        if (
            self.model.model_name_or_path is None
            and self.model.tokenizer_name_or_path is None
            and self.model.model_type is None
        ):
            raise ValueError(
                "model.model_name_or_path: set a base model, a tokenizer, or model.model_type "
                "to train a tokenizer from scratch"
            )
        return self

    def _check_replay(self) -> None:
        share, sources = self.data.replay_share, self.data.data_sources or []
        if share is None:
            return
        if not any(s.role == "replay" for s in sources):
            raise ValueError(
                "data.replay_share: no mixture source is replay text; add one to "
                'data.data_sources with "role": "replay" (the base model\'s language)'
            )
        others = self.data.dataset_dir or self.data.train_file
        if not others and all(s.role == "replay" for s in sources):
            raise ValueError(
                "data.replay_share: every source is replay, so nothing is left for the rest; "
                "set data.dataset_dir to the new language's text"
            )

    def _check_stages(self) -> None:
        """A staged run's stages must fit the run; max_steps is their sum."""
        stages = self.training.stages
        if not stages:
            return
        total = sum(s.max_steps for s in stages)
        if self.training.max_steps > 0 and self.training.max_steps != total:
            raise ValueError(
                f"training.max_steps: the stages' steps add up to {total} but max_steps is "
                f"{self.training.max_steps}; set max_steps to {total} or -1"
            )
        self.training.max_steps = total
        if self.launch.deepspeed != "none":
            raise ValueError(
                "training.stages: a staged run switches what trains between stages, which "
                "DeepSpeed's optimizer cannot follow; set launch.deepspeed to none"
            )
        method = self.method.finetuning_type
        extended = (
            self.model.model_name_or_path is not None
            and self.model.tokenizer_name_or_path is not None
            and self.model.tokenizer_name_or_path != self.model.model_name_or_path
        )
        for i, stage in enumerate(stages):
            if stage.method not in (None, "new_embeddings", method):
                raise ValueError(
                    f"training.stages.{i}.method: {stage.method} but method.finetuning_type is "
                    f"{method}; a run's stages use one method besides new_embeddings (leave "
                    "method empty for the run's own)"
                )
            if stage.method == "new_embeddings" and not extended:
                raise ValueError(
                    f"training.stages.{i}.method: new_embeddings trains only the rows an "
                    "extended tokenizer adds to the base model, and this run has none; set "
                    "model.tokenizer_name_or_path to an extended tokenizer of "
                    "model.model_name_or_path, or give the stage method lora or full"
                )
            if (
                stage.method == "new_embeddings"
                and method == "lora"
                and not (self.method.modules_to_save)
            ):
                raise ValueError(
                    f"training.stages.{i}.method: new_embeddings with LoRA trains the "
                    "embeddings as modules saved in full; set method.modules_to_save to the "
                    "input and output embeddings (e.g. embed_tokens,lm_head)"
                )

    def path_fields(self) -> dict[tuple[str, ...], str]:
        """User-supplied paths by their location, for the allowed-roots check."""
        found: dict[tuple[str, ...], str] = {}
        for section, names in (
            ("model", ("model_name_or_path", "tokenizer_name_or_path", "config_name")),
            ("data", ("dataset_dir", "train_file", "validation_file")),
            ("method", ("peft_path",)),
        ):
            for name in names:
                value = getattr(getattr(self, section), name)
                if value:
                    found[(section, name)] = value
        for i, source in enumerate(self.data.data_sources or []):
            found[("data", "data_sources", str(i), "path")] = source.path
        for name, spec in (self.data.eval_sets or {}).items():
            found[("data", "eval_sets", name, "path")] = spec.path
        return found


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` wins; nested dicts merge key by key (how presets and --set combine)."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
