"""Command-line arguments: the seed's dataclasses, parsing, and the checks that need no model."""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import HfArgumentParser, TrainingArguments

from worker.data.documents import TXT_DOCUMENTS
from worker.data.errors import DataError
from worker.data.eval_sets import DEFAULT_EVAL_CHARACTERS, parse_eval_prompts, parse_eval_sets
from worker.data.sources import check_column, parse_data_sources
from worker.training.failures import InputError
from worker.training.process import single_process_env


@dataclass
class ModelArguments:
    """The seed's model arguments."""

    model_name_or_path: str | None = field(
        default=None, metadata={"help": "Model checkpoint for weights initialization."}
    )
    tokenizer_name_or_path: str | None = field(
        default=None, metadata={"help": "Tokenizer for weights initialization."}
    )
    model_type: str | None = field(
        default=None,
        metadata={
            "help": "SentencePiece type of the tokenizer trained when training from scratch.",
            "choices": ["bpe", "unigram", "char", "word"],
        },
    )
    config_overrides: str | None = field(
        default=None,
        metadata={"help": "From scratch: e.g. n_embd=10,resid_pdrop=0.2 (comma-separated)."},
    )
    config_name: str | None = field(default=None, metadata={"help": "Config name or path."})
    tokenizer_name: str | None = field(default=None, metadata={"help": "Tokenizer name or path."})
    cache_dir: str | None = field(default=None, metadata={"help": "Hub download cache."})
    use_fast_tokenizer: bool = field(default=True, metadata={"help": "Use a fast tokenizer."})
    model_revision: str = field(default="main", metadata={"help": "Model version to use."})
    use_auth_token: bool = field(default=False, metadata={"help": "Use the hub login token."})
    torch_dtype: str | None = field(
        default=None,
        metadata={
            "help": "dtype the model is loaded in.",
            "choices": ["auto", "bfloat16", "float16", "float32"],
        },
    )
    new_embeddings_init: str = field(
        default="subtoken_mean",
        metadata={
            "help": "Rows for tokens the tokenizer adds to the model's vocabulary: subtoken_mean "
            "(mean of the rows of the base tokenizer's pieces for the token's text), "
            "mean_resizing (transformers' default) or random (initializer_range).",
            "choices": ["subtoken_mean", "mean_resizing", "random"],
        },
    )


@dataclass
class DataTrainingArguments:
    """The seed's data arguments."""

    dataset_dir: str | None = field(
        default=None, metadata={"help": "Directory of .txt and .jsonl ({'text': ...}) files."}
    )
    dataset_config_name: str | None = field(default=None, metadata={"help": "Unused; kept."})
    train_file: str | None = field(default=None, metadata={"help": "A training text file."})
    validation_file: str | None = field(default=None, metadata={"help": "An evaluation file."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Keep N train blocks."})
    max_eval_samples: int | None = field(
        default=None,
        metadata={
            "help": "Keep N eval samples: blocks of the validation split, documents of "
            "--validation_file."
        },
    )
    streaming: bool = field(default=False, metadata={"help": "Stream the data (needs max_steps)."})
    block_size: int | None = field(default=None, metadata={"help": "Tokens per sequence."})
    overwrite_cache: bool = field(default=False, metadata={"help": "Rebuild the data cache."})
    # argparse %-formats help text: a literal percent sign is written %%.
    validation_split_percentage: float | None = field(
        default=0.05, metadata={"help": "Fraction of blocks held out (0.05 = 5%%)."}
    )
    preprocessing_num_workers: int | None = field(
        default=None, metadata={"help": "Processes for tokenization (capped at the CPU count)."}
    )
    keep_linebreaks: bool = field(default=True, metadata={"help": "Keep line breaks of .txt."})
    txt_documents: str = field(
        default="line",
        metadata={
            "help": "How a .txt file is cut into documents: line, blank_line (paragraphs) or "
            "file (the whole file).",
            "choices": list(TXT_DOCUMENTS),
        },
    )
    text_column: str | None = field(
        default=None,
        metadata={
            "help": "The field (.jsonl) or column (.parquet, a dataset saved by datasets) "
            "holding the text of --dataset_dir/--train_file/--validation_file. Empty: text."
        },
    )
    data_cache_dir: str | None = field(
        default="./",
        # The seed's example command spells it --data_cache (argparse's prefix matching, which
        # this parser does not do: the one abbreviation it accepts is named here).
        metadata={"help": "Where tokenized blocks are cached.", "aliases": ["--data_cache"]},
    )
    packing: str = field(
        default="eos",
        metadata={
            "help": "eos: an EOS token after each document, blocks start on a character; "
            "classic: the seed's plain concatenation.",
            "choices": ["eos", "classic"],
        },
    )
    eval_sets: str | None = field(
        default=None,
        metadata={
            "help": 'JSON {name: path | {"path", "role": "retain"|"target", "max_documents", '
            '"max_characters"}} (or a .json file of it): held-out sets evaluated at every '
            "evaluation (eval_<name>_loss/_perplexity/_bits_per_char/_bits_per_byte) over a "
            "fixed prefix of their documents; never trained on."
        },
    )
    eval_max_characters: int = field(
        default=DEFAULT_EVAL_CHARACTERS,
        metadata={
            "help": "Characters scored of each held-out set that gives neither max_documents "
            "nor max_characters (a prefix of its documents, the same for every tokenizer)."
        },
    )
    replay_share: float | None = field(
        default=None,
        metadata={
            "help": "Fraction of the training tokens drawn from the --data_sources whose role "
            "is replay (the base model's language), e.g. 0.2; the other sources share the rest "
            "by weight. Unset: every source by its weight."
        },
    )
    data_sources: str | None = field(
        default=None,
        metadata={
            "help": 'JSON list of {"path", "weight", "name"} (or a .json file of it): sources '
            "mixed by weight (seeded by --seed); --dataset_dir/--train_file is one more "
            "source of weight 1."
        },
    )


@dataclass
class PretrainArguments(TrainingArguments):
    """``TrainingArguments`` plus the seed's custom arguments and flags transformers 5 dropped."""

    trainable: str = field(default="q_proj,v_proj", metadata={"help": "LoRA target modules."})
    lora_rank: int = field(default=8, metadata={"help": "LoRA rank."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})
    lora_alpha: float = field(default=32.0, metadata={"help": "LoRA alpha."})
    modules_to_save: str | None = field(
        default="embed_tokens,lm_head", metadata={"help": "Modules trained in full with LoRA."}
    )
    debug_mode: bool = field(default=False, metadata={"help": "Tiny subset, verbose output."})
    peft_path: str | None = field(default=None, metadata={"help": "Continue this adapter."})
    finetuning_type: str = field(
        default="lora", metadata={"help": "lora or full.", "choices": ["lora", "full"]}
    )
    divergence_patience: int = field(
        default=3, metadata={"help": "Stop after K consecutive steps with NaN/inf loss."}
    )
    divergence_factor: float = field(
        default=5.0,
        metadata={
            "help": "Stop as diverged when the logged loss stays above this x its best for "
            "--divergence_logs logs in a row (0: off)."
        },
    )
    divergence_logs: int = field(
        default=5,
        metadata={
            "help": "Logs in a row for --divergence_factor, and for the dead-training warning "
            "(a zero gradient norm or a constant loss)."
        },
    )
    stages: str | None = field(
        default=None,
        metadata={
            "help": 'JSON list of {"method": "new_embeddings"|"lora"|"full", "max_steps", '
            '"learning_rate", "name"}: train in stages, one after another in this run '
            "(worker/training/stages.py); the steps add up to --max_steps."
        },
    )
    eval_at_start: bool = field(
        default=True, metadata={"help": "Evaluate before the first update (the step-0 baseline)."}
    )
    eval_prompts: str | None = field(
        default=None,
        metadata={
            "help": "JSON {group: [prompt, ...]}: continued greedily and sampled (fixed seed) "
            "at every evaluation, written as sample events."
        },
    )
    sample_max_new_tokens: int = field(default=48, metadata={"help": "New tokens per sample."})
    # Removed from TrainingArguments in transformers 5; the seed's command still passes them.
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Train even if output_dir holds checkpoints."}
    )
    warmup_ratio: float | None = field(
        default=0.05,
        metadata={
            "help": "Warm-up as a fraction of the steps (→ warmup_steps, unless that is set); "
            "the seed's 0.05."
        },
    )


def parse_args(
    argv: list[str],
) -> tuple[ModelArguments, DataTrainingArguments, PretrainArguments]:
    """The one parse of the command line (argparse, exact flag names, no prefix matching).

    Nothing reads ``argv`` item by item before or after this: a value such as
    ``--model_revision=--output_dir=/x`` is a value, never a flag, only to a real parser.
    """
    dataclass_types: Any = (ModelArguments, DataTrainingArguments, PretrainArguments)
    parser = HfArgumentParser(dataclass_types)
    parser.allow_abbrev = False  # ``--output_d`` is no ``--output_dir``
    # 0 = "not given": evaluate with what training fits, the micro-batch (HF's 8 is arbitrary).
    # Progress bars redraw with \r: noise in a log file that the panel ships line by line.
    parser.set_defaults(per_device_eval_batch_size=0, disable_tqdm=not sys.stdout.isatty())
    if len(argv) == 1 and argv[0].endswith(".json"):
        return parser.parse_json_file(argv[0])  # type: ignore[return-value]
    namespace = parser.parse_args(argv)
    # Several trackers in one value (``--report_to=mlflow,tensorboard``): HF takes one string.
    if isinstance(namespace.report_to, str) and "," in namespace.report_to:
        namespace.report_to = split_names(namespace.report_to)
    # Trackio's project is a TrainingArguments field; the panel hands it over in the environment.
    if os.environ.get("TRACKIO_PROJECT") and namespace.project == "huggingface":
        namespace.project = os.environ["TRACKIO_PROJECT"]
    # The run's name in its trackers (the panel's run id, the same for every attempt), unless given.
    if not namespace.run_name and os.environ.get("CPT_TRACKER_RUN_NAME"):
        namespace.run_name = os.environ["CPT_TRACKER_RUN_NAME"]
    # Before the dataclasses: TrainingArguments sets up DeepSpeed's process group as it is built.
    single_process_env(bool(namespace.deepspeed))
    built = []
    for dtype in dataclass_types:
        keys = {f.name for f in dataclasses.fields(dtype) if f.init}
        built.append(dtype(**{k: v for k, v in vars(namespace).items() if k in keys}))
    model_args, data_args, training_args = built
    if training_args.per_device_eval_batch_size == 0:
        training_args.per_device_eval_batch_size = training_args.per_device_train_batch_size
    return model_args, data_args, training_args


def split_names(names: str | None) -> list[str]:
    """``"a, b,"`` → ``["a", "b"]`` (the comma-separated flags)."""
    return [n.strip() for n in (names or "").split(",") if n.strip()]


def parse_config_overrides(text: str | None) -> dict[str, str]:
    """``--config_overrides`` as a dict; raises InputError on an item that is not key=value."""
    out: dict[str, str] = {}
    for item in split_names(text):
        if "=" not in item:
            raise InputError(f"--config_overrides: {item!r} is not key=value")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def check_stages(args: PretrainArguments) -> None:
    """``--stages`` parses, sets ``--max_steps`` when it is not given, and needs no DeepSpeed."""
    from worker.training.stages import parse_stages, total_steps

    stages = parse_stages(str(args.stages), args.finetuning_type, args.learning_rate)
    total = total_steps(stages)
    if args.max_steps <= 0:
        args.max_steps = total
    elif args.max_steps != total:
        raise InputError(
            f"--stages: the stages' steps add up to {total} but --max_steps is {args.max_steps}"
        )
    if args.deepspeed:
        raise InputError(
            "--stages: DeepSpeed's optimizer cannot follow what trains changing between stages; "
            "drop --deepspeed"
        )


def check_arguments(
    model_args: ModelArguments, data_args: DataTrainingArguments, args: PretrainArguments
) -> None:
    """Cross-flag checks that need no model or data."""
    if args.warmup_ratio is not None:
        if not 0 <= args.warmup_ratio < 1:
            raise InputError(f"--warmup_ratio must be in [0, 1), got {args.warmup_ratio}")
        if not args.warmup_steps:
            args.warmup_steps = args.warmup_ratio  # transformers 5 reads a float < 1 as a ratio
    if args.fp16 and (args.use_cpu or not torch.cuda.is_available()):
        raise InputError(
            "--fp16 needs a CUDA GPU and this process runs on the CPU; "
            "use --bf16 or no precision flag (fp32) instead"
        )
    if data_args.streaming and args.max_steps <= 0:
        raise InputError("--streaming needs --max_steps > 0 (a stream has no known length)")
    if not (data_args.dataset_dir or data_args.train_file or data_args.data_sources):
        raise InputError("--dataset_dir (or --train_file, or --data_sources) is required")
    try:
        if data_args.text_column is not None:
            check_column(data_args.text_column, "--text_column")
        data_args.text_column = data_args.text_column or "text"
        items = parse_data_sources(data_args.data_sources) if data_args.data_sources else []
    except DataError as exc:
        raise InputError(str(exc)) from exc
    if data_args.replay_share is not None:
        if not 0 <= data_args.replay_share < 1:
            raise InputError(
                f"--replay_share is a fraction in [0, 1), got {data_args.replay_share}"
            )
        if not any(s.get("role") == "replay" for s in items):
            raise InputError(
                '--replay_share: no --data_sources item has "role": "replay" (the base '
                "model's language to replay)"
            )
        if not (data_args.dataset_dir or data_args.train_file) and all(
            s.get("role") == "replay" for s in items
        ):
            raise InputError("--replay_share: every source is replay; nothing is left for the rest")
    if data_args.dataset_dir and not Path(data_args.dataset_dir).is_dir():
        raise InputError(f"--dataset_dir {data_args.dataset_dir} is not a directory")
    for flag in ("train_file", "validation_file"):
        value = getattr(data_args, flag)
        if value and not Path(value).is_file():
            raise InputError(f"--{flag} {value} does not exist")
    pct = data_args.validation_split_percentage or 0
    if not 0 <= pct < 1:
        raise InputError(f"--validation_split_percentage is a fraction in [0, 1), got {pct}")
    if data_args.eval_sets:
        try:
            parse_eval_sets(data_args.eval_sets)
        except DataError as exc:
            raise InputError(str(exc)) from exc
    if args.eval_prompts:
        try:
            parse_eval_prompts(args.eval_prompts)
        except DataError as exc:
            raise InputError(str(exc)) from exc
    if args.stages:
        check_stages(args)
    if args.sample_max_new_tokens < 1:
        raise InputError("--sample_max_new_tokens must be at least 1")
    if args.divergence_patience < 1:
        raise InputError("--divergence_patience must be at least 1")
    if args.divergence_logs < 1:
        raise InputError("--divergence_logs must be at least 1")
    if args.divergence_factor != 0 and args.divergence_factor <= 1:
        raise InputError("--divergence_factor must be above 1 (or 0: off)")
    if args.finetuning_type == "lora" and not split_names(args.trainable):
        raise InputError("--trainable lists no module for LoRA")
    if not model_args.model_name_or_path and not (
        model_args.tokenizer_name_or_path or model_args.tokenizer_name or model_args.model_type
    ):
        raise InputError(
            "--model_name_or_path is empty (training from scratch): give a tokenizer with "
            "--tokenizer_name_or_path or choose --model_type bpe|unigram|char|word to train one"
        )
