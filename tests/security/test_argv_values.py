"""No value a user controls is ever read as a flag by the training script.

Found: ``model.model_revision`` (or ``model.config_overrides``) set to ``--output_dir=/anywhere``:
``pretrain.py`` looked for the first ``--output_dir=`` among its arguments before parsing them,
so the worker's run failed but had already created ``/anywhere/events.jsonl``.
Now every schema value travels glued to its flag and ``pretrain.py`` parses its arguments once.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cpt_contract.runconfig.argv import LaunchContext, pretrain_args
from cpt_contract.runconfig.schema import RunConfig

CTX = LaunchContext(output_dir="/runs/r1/output", data_cache_dir="/cache", use_cpu=True)


def _parse(args: list[str]) -> dict[str, Any]:
    from worker.training.arguments import parse_args

    model_args, data_args, training_args = parse_args(args)
    return {**vars(model_args), **vars(data_args), **vars(training_args)}


@pytest.mark.parametrize("field", ["model_revision", "config_overrides"])
def test_a_value_that_looks_like_a_flag_stays_a_value(field: str, tmp_path: Path) -> None:
    outside = tmp_path / "anywhere"
    attack = f"--output_dir={outside}"
    raw = {
        "model": {"model_name_or_path": str(tmp_path / "no-model")},
        "data": {"dataset_dir": str(tmp_path / "no-data")},
    }
    # First layer: the field refuses a value that begins with '-'.
    with pytest.raises(ValueError, match=f"{field}[\\s\\S]*must not begin with '-'"):
        RunConfig.model_validate({**raw, "model": {**raw["model"], field: attack}})
    # Second layer (a config that skipped validation): the value is glued to its flag and the
    # script's one parse keeps it a value.
    config = RunConfig.model_validate(raw)
    setattr(config.model, field, attack)
    out = tmp_path / "out"
    ctx = LaunchContext(output_dir=str(out), data_cache_dir=str(tmp_path), use_cpu=True)
    args = pretrain_args(config, ctx)
    parsed = _parse(args)
    assert parsed[field] == attack
    assert parsed["output_dir"] == str(out)
    # The script itself: it fails (no such model) and writes its events where the panel said.
    from worker import pretrain

    previous = signal.getsignal(signal.SIGTERM)
    try:
        pretrain.main(args)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert not outside.exists(), "a value was read as --output_dir"
    assert (out / "events.jsonl").is_file()


def test_no_prefix_of_a_flag_is_taken_for_it() -> None:
    """argparse's abbreviations are off: ``--output_d`` is not ``--output_dir``."""
    with pytest.raises(SystemExit):
        _parse(["--output_dir", "/o", "--output_d", "/elsewhere", "--use_cpu"])


#: Text a user may type: anything printable, flags and ``=`` signs most of all.
_TEXT = st.one_of(
    st.text(min_size=1, max_size=40),
    st.builds(
        "".join,
        st.lists(
            st.sampled_from(["--", "-", "output_dir", "=", "/x", " ", "--deepspeed", "do_train"]),
            min_size=1,
            max_size=6,
        ),
    ),
).filter(lambda s: "\x00" not in s and s.isprintable())
_NUMBER = st.floats(min_value=1e-6, max_value=1.0)


@st.composite
def _configs(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "model": {
            "model_name_or_path": "/m/" + draw(_TEXT),
            "tokenizer_name_or_path": draw(st.none() | _TEXT.map(lambda s: "/t/" + s)),
            "model_revision": draw(_TEXT),
            "config_overrides": draw(st.none() | _TEXT),
            "config_name": draw(st.none() | _TEXT.map(lambda s: "/c/" + s)),
        },
        "data": {
            "dataset_dir": "/d/" + draw(_TEXT),
            "validation_split_percentage": draw(st.floats(0, 0.5)),
            "eval_sets": draw(
                st.dictionaries(st.sampled_from(["kn", "en", "x-1"]), _TEXT.map(lambda s: "/e" + s))
            ),
        },
        "method": {
            "finetuning_type": draw(st.sampled_from(["lora", "full"])),
            "trainable": draw(st.sampled_from(["q_proj,v_proj", "q_proj", "all"])),
            "modules_to_save": draw(st.sampled_from(["", "lm_head", "embed_tokens,lm_head"])),
            "lora_dropout": draw(st.floats(0, 0.5)),
        },
        "training": {
            "learning_rate": draw(_NUMBER),
            "eval_prompts": draw(
                st.none() | st.dictionaries(st.just("kn"), st.lists(_TEXT, max_size=2))
            ),
            "extra_args": draw(
                st.sampled_from(
                    [[], ["--optim", "adamw_torch"], ["--warmup_steps=3", "--tf32", "False"]]
                )
            ),
        },
    }


@given(raw=_configs())
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
    derandomize=True,  # the same examples every run: CI stays reproducible
)
def test_any_config_parses_back_to_exactly_the_schemas_values(raw: dict[str, Any]) -> None:
    """Parsed by ``pretrain.py``'s own parser, the argv of any valid config yields the schema's
    values and the panel's own flags, nothing extra and nothing overridden."""
    import json

    try:
        config = RunConfig.model_validate(raw)
    except ValueError:
        return  # the schema refused it at its field: nothing reaches an argv
    args = pretrain_args(config, CTX)
    parsed = _parse(args)
    assert parsed["output_dir"] == CTX.output_dir
    assert parsed["data_cache_dir"] == CTX.data_cache_dir
    assert parsed["deepspeed"] is None and parsed["do_train"] is True
    assert parsed["resume_from_checkpoint"] is None
    for section in ("model", "data", "method"):
        for name, value in getattr(config, section).model_dump().items():
            if (
                name not in parsed
                or value is None
                or not any(a == f"--{name}" or a.startswith(f"--{name}=") for a in args)
            ):
                continue  # a launcher-only field, or one this method does not pass
            got = parsed[name]
            if name in ("eval_sets", "data_sources") and got is not None:
                got = json.loads(got)
                value = (
                    {
                        k: {kk: vv for kk, vv in v.items() if vv is not None}
                        for k, v in value.items()
                    }
                    if isinstance(value, dict)
                    else value
                )
            if value in ({}, []) and got is None:
                continue
            assert got == value or str(got) == str(value), (name, got, value)
    assert parsed["model_revision"] == config.model.model_revision
    assert parsed["learning_rate"] == config.training.learning_rate


def test_pass_through_numbers_are_bounded() -> None:
    """``--dataloader_num_workers 100000`` was accepted: each allowed flag now has its range."""
    for extra in (
        ["--dataloader_num_workers", "100000"],
        ["--dataloader_num_workers=-1"],
        ["--adam_beta2", "1.5"],
        ["--eval_accumulation_steps", "1e12"],
        ["--warmup_steps"],
        ["--log_level", "--output_dir=/x"],
        ["--optim", "adamw torch; rm"],
    ):
        with pytest.raises(ValueError, match="extra_args"):
            RunConfig.model_validate({"training": {"extra_args": extra}})
    ok = RunConfig.model_validate(
        {
            "model": {"model_name_or_path": "/m"},
            "data": {"dataset_dir": "/d"},
            "training": {"extra_args": ["--dataloader_num_workers", "4"]},
        }
    )
    assert ok.training.extra_args == ["--dataloader_num_workers", "4"]


def test_a_jobs_values_stay_values(tmp_path: Path) -> None:
    """The other programs the worker starts: a prompt that looks like a flag is the prompt."""
    import json

    from cpt_contract.jobs import GenerateParams
    from cpt_contract.run_paths import JobPaths, RunPaths
    from cpt_contract.settings import Settings
    from worker.agent.jobs import generate_argv
    from worker.generate import build_parser

    settings = Settings(data_dir=tmp_path / "data", build_demo=False)
    run = RunPaths.of(settings.runs_dir, "r-1")
    run.run_dir.mkdir(parents=True)
    run.config.write_text(json.dumps({"model": {"model_name_or_path": "/m/base"}}))
    attack = f"--json={tmp_path / 'elsewhere.json'}"
    params = GenerateParams(run_id="r-1", checkpoint="checkpoint-1", prompt=attack)
    argv = generate_argv(settings, params, JobPaths(tmp_path / "job"))
    args = build_parser().parse_args(argv[3:])
    assert args.prompt == attack
    assert args.json == tmp_path / "job" / "result.json"
