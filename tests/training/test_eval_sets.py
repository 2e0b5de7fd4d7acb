"""Held-out sets on the tiny Llama: exact scoring windows, no eval text trained on, per-set
metrics from step 0, samples at every eval, the budget warning."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from transformers import AutoTokenizer

from cpt_contract import events as contract_events
from cpt_contract import text as contract_text
from tests.support.panel import ROOT
from tests.support.pretrain import events_of, output_of, run_pretrain, tiny_args, train_env
from worker import events as worker_events
from worker.data.documents import read_texts
from worker.data.errors import DataError
from worker.data.eval_sets import Budget, build_windows, parse_eval_sets, select_documents
from worker.training.arguments import parse_args
from worker.training.data import build_run_data
from worker.training.evaluation import Evaluator, set_metrics


def test_the_writer_knows_the_contract_s_event_kinds() -> None:
    assert worker_events.KINDS == contract_events.KINDS


@pytest.mark.parametrize("tok_key", ["tokenizer", "tokenizer_extended"])
def test_windows_score_every_document_token_once(
    tok_key: str, tiny_assets: dict[str, Path]
) -> None:
    """Every token of every document is a scored target exactly once; separators never are;
    the characters are the documents' own, whatever the tokenizer."""
    tok = AutoTokenizer.from_pretrained(str(tiny_assets[tok_key]))
    path = tiny_assets["corpus"] / "udhr_zh_Hans.txt"
    docs, _ = read_texts(path)
    w = build_windows("zh", [path], tok, 32, Budget())
    ids = [tok(d, add_special_tokens=False)["input_ids"] for d in docs]
    assert w.documents == len(docs)
    assert w.characters == sum(len(d) for d in docs)
    assert w.bytes == sum(len(d.encode()) for d in docs)
    assert w.tokens == sum(len(i) for i in ids)
    # The scored targets, read window by window, are exactly the documents' tokens in order.
    targets = [int(t) for row, m in zip(w.input_ids, w.scored, strict=True) for t in row[m]]
    assert targets == [t for i in ids for t in i]
    assert not w.scored[:, 0].any()  # the first position is context only
    # Each window starts with the previous one's last token.
    assert all(w.input_ids[k][0] == w.input_ids[k - 1][-1] for k in range(1, len(w.input_ids)))


def test_a_budget_is_the_same_text_for_every_tokenizer(tiny_assets: dict[str, Path]) -> None:
    """A budget of characters or documents picks a prefix of the documents before any
    tokenizer sees them: the base and the extended tokenizer score the same characters (same
    digest) in different numbers of tokens; the last document is cut at a code point."""
    path = tiny_assets["corpus"] / "udhr_zh_Hans.txt"
    docs, _ = read_texts(path)
    text = "".join(docs)
    tokenizers = [
        AutoTokenizer.from_pretrained(str(tiny_assets[k]))
        for k in ("tokenizer", "tokenizer_extended")
    ]
    for budget, chars, n_docs in (
        (Budget(max_characters=500), 500, None),
        (Budget(max_documents=3), sum(len(d) for d in docs[:3]), 3),
        (Budget(max_documents=2, max_characters=10_000), sum(len(d) for d in docs[:2]), 2),
    ):
        base, ext = (build_windows("zh", [path], t, 16, budget) for t in tokenizers)
        assert base.characters == ext.characters == chars < len(text)
        assert base.documents == ext.documents
        if n_docs is not None:
            assert base.documents == n_docs
        assert base.truncated and ext.truncated
        assert base.text_sha256 == ext.text_sha256
        assert base.tokens != ext.tokens  # the extension tokenizes the same text shorter
        assert ext.info()["max_characters"] == budget.max_characters
        # The scored tokens are exactly the tokens of the prefix's documents.
        chosen, _ = select_documents([path], budget)
        assert "".join(chosen) == text[:chars]
        for w, tok in ((base, tokenizers[0]), (ext, tokenizers[1])):
            scored = [int(t) for row, m in zip(w.input_ids, w.scored, strict=True) for t in row[m]]
            assert scored == [
                t for d in chosen for t in tok(d, add_special_tokens=False)["input_ids"]
            ]
    cut = build_windows("zh", [path], tokenizers[0], 16, Budget(max_characters=len(docs[0]) + 5))
    assert cut.documents == 2 and cut.characters == len(docs[0]) + 5
    whole = build_windows("zh", [path], tokenizers[0], 16, Budget(max_characters=10**9))
    assert not whole.truncated and whole.characters == len(text)
    assert whole.text_sha256 != cut.text_sha256


def test_bits_per_char_is_the_summed_nll_over_characters() -> None:
    m = set_metrics("kn", nll=100 * np.log(2), tokens=50, chars=200, nbytes=400)
    assert m["eval_kn_bits_per_char"] == pytest.approx(0.5)
    assert m["eval_kn_bits_per_byte"] == pytest.approx(0.25)
    assert m["eval_kn_loss"] == pytest.approx(100 * np.log(2) / 50)
    assert m["eval_kn_perplexity"] == pytest.approx(np.exp(m["eval_kn_loss"]))


def test_the_budget_warning() -> None:
    ev = Evaluator([], None, 8, 1)
    assert ev.check_budget(0.0, 30.0, 0) is None  # the first eval has no interval yet
    assert ev.check_budget(130.0, 133.0, 10) is None  # 3 s after 100 s of training: fine
    warning = ev.check_budget(233.0, 263.0, 20)  # 30 s after 100 s
    assert warning is not None and warning["code"] == contract_events.WARNING_EVAL_BUDGET
    assert "max_characters" in warning["message"]
    assert ev.check_budget(363.0, 400.0, 30) is None  # said once


def test_bad_eval_sets_name_the_flag_and_the_fix(tmp_path: Path) -> None:
    for value, words in (
        ("[1]", "JSON object"),
        ('{"a b": "/x"}', "set name"),
        ('{"kn": {"path": "/x", "role": "keep"}}', '"role"'),
        ('{"kn": {"path": "/x", "max_documents": 0}}', "max_documents"),
        ('{"kn": {"path": "/x", "max_characters": true}}', "max_characters"),
        ('{"kn": {"path": "/x", "max_eval_samples": 3}}', "max_documents"),
        ('{"kn": {"file": "/x"}}', "unknown key"),
    ):
        with pytest.raises(DataError, match=words):
            parse_eval_sets(value)


def test_no_eval_document_is_trained_on(tiny_assets: dict[str, Path], tmp_path: Path) -> None:
    """A validation file and an eval set inside the dataset directory are left out of training."""
    data = tmp_path / "data"
    shutil.copytree(tiny_assets["corpus"], data)
    held = data / "udhr_ta_Taml.txt"
    valid = data / "udhr_kn_Knda.txt"
    tok = AutoTokenizer.from_pretrained(str(tiny_assets["tokenizer_extended"]))

    def trained_text(*extra: str) -> str:
        argv = ["--dataset_dir", str(data), "--output_dir", str(tmp_path / "o"), *extra]
        _, data_args, args = parse_args([*argv, "--data_cache_dir", str(tmp_path / "c")])
        run_data, summary = build_run_data(data_args, args, tok, 64)
        blocks = [run_data.train.block(i) for i in range(len(run_data.train))]
        return "".join(tok.decode(b, skip_special_tokens=True) for b in blocks), summary

    docs = [d.strip() for p in (held, valid) for d in read_texts(p)[0] if len(d.strip()) > 40]
    assert docs
    everything, _ = trained_text("--validation_split_percentage", "0")
    assert any(d[:40] in everything for d in docs)  # the check can fail
    text, summary = trained_text(
        "--validation_file", str(valid), "--eval_sets", json.dumps({"ta": str(held)})
    )
    assert summary[0]["files"] == len(list(data.iterdir())) - 2
    assert not [d for d in docs if d[:40] in text]


def test_a_run_reports_every_set_from_step_0_with_samples(
    tiny_assets: dict[str, Path], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    shutil.copytree(tiny_assets["corpus"], data)
    sets = {
        "kn": {"path": str(data / "udhr_kn_Knda.txt"), "role": "target", "max_documents": 3},
        "en": {"path": str(data / "udhr_en_Latn.txt"), "role": "retain"},
    }
    prompts = {"en": ["All human beings"], "kn": ["ಎಲ್ಲಾ"]}
    out = tmp_path / "out"
    args = tiny_args(
        tiny_assets, out, tmp_path / "cache",
        dataset_dir=data, max_steps=4, eval_steps=2, save_steps=4,
        per_device_eval_batch_size=None, max_eval_samples=None,
        eval_sets=json.dumps(sets), eval_prompts=json.dumps(prompts), sample_max_new_tokens=6,
    )  # fmt: skip
    proc = run_pretrain(args)
    assert proc.returncode == 0, output_of(proc)[-4000:]
    assert "udhr_kn_Knda.txt is eval set 'kn': left out of training" in output_of(proc)
    events = events_of(out)
    start = next(e for e in events if e["kind"] == "start")
    info = {s["name"]: s for s in start["eval_sets"]}
    assert list(info) == ["validation", "kn", "en"]
    assert info["kn"]["role"] == "target" and info["en"]["role"] == "retain"
    assert info["kn"]["documents"] == 3 and info["kn"]["characters"] > 0
    kn_docs = read_texts(data / "udhr_kn_Knda.txt")[0][:3]
    assert info["kn"]["characters"] == sum(len(d) for d in kn_docs)
    assert info["en"]["max_characters"] == contract_text.DEFAULT_EVAL_CHARACTERS
    assert info["validation"]["exact"] is False and info["kn"]["exact"] is True
    evals = [e for e in events if e["kind"] == "eval"]
    assert [e["step"] for e in evals] == [0, 2, 4]
    for e in evals:
        for name in info:
            for what in contract_events.EVAL_METRICS:
                assert isinstance(e[contract_events.eval_metric(name, what)], float), (name, what)
    # Scoring and sampling timed apart, with the tokens generated (the launch estimate's speed).
    for e in evals:
        assert e["eval_score_seconds"] > 0 and e["eval_sample_seconds"] > 0
        assert 2 * 2 <= e["eval_sample_tokens"] <= 2 * 2 * 6  # prompts x modes x max new
    samples = [e for e in events if e["kind"] == "sample"]
    assert sorted({e["step"] for e in samples}) == [0, 2, 4]
    assert len(samples) == 3 * 2 * 2  # evals x prompts x (greedy, sampled)
    for e in samples:
        contract_events.SampleEvent.model_validate(e)
    assert {e["mode"] for e in samples} == {"greedy", "sampled"}

    # "Try it" on the run's checkpoint: the adapter on its base, with the extended tokenizer.
    result = tmp_path / "generate.json"
    gen = subprocess.run(
        [sys.executable, "-m", "worker.generate", "--base", str(tiny_assets["model"]),
         "--checkpoint", str(out / "checkpoint-4"), "--prompt", "All human beings",
         "--max_new_tokens", "5", "--mode", "sampled", "--json", str(result)],
        cwd=ROOT, env=train_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert gen.returncode == 0, gen.stdout + gen.stderr
    answer = json.loads(result.read_text())
    assert answer["mode"] == "sampled" and 1 <= answer["new_tokens"] <= 5
    assert answer["text"] in gen.stdout


def test_generate_refuses_bad_input(tmp_path: Path) -> None:
    gen = subprocess.run(
        [sys.executable, "-m", "worker.generate", "--checkpoint", str(tmp_path / "nope"),
         "--prompt", "x", "--json", str(tmp_path / "r.json")],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert gen.returncode == 2 and "--checkpoint" in gen.stderr


def test_zero3_two_processes_score_what_one_process_scores(
    tiny_assets: dict[str, Path], tmp_path: Path
) -> None:
    """Sharded windows (3 over 2 ranks: one rank runs a dummy forward), ZeRO-3's collective
    weight gathers and synced generation give the one-process figures at step 0."""
    from tests.support.pretrain import DS_CONFIGS

    config = json.loads((DS_CONFIGS / "ds_zero3.json").read_text())
    config["zero_optimization"]["stage3_param_persistence_threshold"] = 0
    ds = tmp_path / "ds_zero3_tiny.json"
    ds.write_text(json.dumps(config))
    # 55 characters of Kannada make 3 windows of 64 tokens with the tiny model's tokenizer.
    sets = {"kn": {"path": str(tiny_assets["corpus"] / "udhr_kn_Knda.txt"), "max_characters": 55}}

    def run(name: str, nproc: int | None, **flags: object) -> list[dict[str, object]]:
        out = tmp_path / name
        args = tiny_args(
            tiny_assets, out, tmp_path / f"cache-{name}",
            finetuning_type="full", tokenizer_name_or_path=None, max_steps=2, eval_steps=None,
            eval_strategy="no", save_steps=100, validation_split_percentage=0,
            max_eval_samples=None, per_device_eval_batch_size=1, eval_sets=json.dumps(sets),
            eval_prompts=json.dumps({"en": ["All human"]}), sample_max_new_tokens=4, **flags,
        )  # fmt: skip
        proc = run_pretrain(args, nproc=nproc)
        assert proc.returncode == 0, output_of(proc)[-4000:]
        return events_of(out)

    one = run("one", None)
    assert next(e for e in one if e["kind"] == "start")["eval_sets"][0]["windows"] == 3
    two = run("two", 2, deepspeed=ds)
    e1 = next(e for e in one if e["kind"] == "eval")
    e2 = next(e for e in two if e["kind"] == "eval")
    assert e1["step"] == e2["step"] == 0
    for what in ("loss", "bits_per_char", "bits_per_byte"):
        key = f"eval_kn_{what}"
        assert e2[key] == pytest.approx(e1[key], rel=1e-5), key
    greedy = [
        next(e["text"] for e in ev if e["kind"] == "sample" and e["mode"] == "greedy")
        for ev in (one, two)
    ]
    assert greedy[0] == greedy[1]  # the same base model continues the same way
    assert len([e for e in two if e["kind"] == "sample"]) == 2 * 2  # rank 0 writes, 2 evals


def test_eval_batch_defaults_to_the_training_micro_batch(tmp_path: Path) -> None:
    base = ["--dataset_dir", str(tmp_path), "--output_dir", str(tmp_path / "o")]
    _, _, args = parse_args([*base, "--per_device_train_batch_size", "3"])
    assert args.per_device_eval_batch_size == 3
    _, _, args = parse_args([*base, "--per_device_eval_batch_size", "5"])
    assert args.per_device_eval_batch_size == 5
