"""A Qwen-shaped model (padded vocabulary) and a Gemma-shaped one (tied embeddings), tiny and
built locally (``tests/support/architectures.py``), through the whole way out in Chromium:
trained with the extended tokenizer (a short LoRA run on the real worker), merged with the
run page's "Merge & export", then published with its card from "Export & publish" to the Hub
endpoint that records what ``huggingface_hub``'s upload client sends
(``tests/support/hub_api.py``; the panel's worker points ``CPT_HUB_ENDPOINT`` and its token
there). What is checked: the start event says what became of the new rows (Qwen2's padded rows
reused, Gemma-2 grown and still tied), the repo named in the form got the model, the tokenizer
and README.md, and that card holds the run's bits/char and its config.

Small on purpose (2 shared cores): 4 LoRA steps, 8 eval samples, 4 documents scored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.architectures import TIED, TINY, build_tiny
from tests.support.hub_api import PUBLISH_TOKEN, HubApi
from tests.support.panel import ASSET_CACHE, Panel
from tests.support.ui import UI, link_demo, screenshot, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def publish_ui(browser: Any, publish_panel: Panel, tiny_assets: dict[str, Path]) -> Iterator[UI]:
    link_demo(publish_panel.data_dir, tiny_assets)
    u = UI(browser, publish_panel.url, publish_panel.token)
    try:
        yield u
    finally:
        u.close()
    assert not u.console_errors, u.console_errors


def _train(panel: Panel, model: Path, tiny_assets: dict[str, Path], name: str) -> str:
    kannada = tiny_assets["corpus"] / "udhr_kn_Knda.txt"
    config: dict[str, Any] = {
        "model": {
            "model_name_or_path": str(model),
            "tokenizer_name_or_path": str(tiny_assets["tokenizer_extended"]),
        },
        "data": {
            "max_eval_samples": 8,
            "eval_sets": {"kn": {"path": str(kannada), "role": "target", "max_documents": 4}},
        },
        "training": {"max_steps": 4, "logging_steps": 1, "save_steps": 4, "eval_steps": 4},
    }
    with panel.client() as c:
        r = c.post("/api/runs", json={"name": name, "preset": "tiny-demo", "config": config})
        assert r.status_code == 201, r.text
        run_id = str(r.json()["id"])
        wait_until(
            lambda: c.get(f"/api/runs/{run_id}").json()["status"] in ("succeeded", "failed"),
            600,
            interval=1,
            what=f"the {name} run to end",
        )
        run = c.get(f"/api/runs/{run_id}").json()
        assert run["status"] == "succeeded", (run.get("status_reason"), run.get("failure"))
    return run_id


@pytest.mark.parametrize("model_type", ["qwen2", "gemma2"])
def test_a_tiny_architecture_is_trained_merged_and_published_with_its_card(
    model_type: str,
    publish_ui: UI,
    publish_panel: Panel,
    publish_hub: HubApi,
    tiny_assets: dict[str, Path],
) -> None:
    hub_api = publish_hub
    model = build_tiny(model_type, tiny_assets["tokenizer"], ASSET_CACHE / f"tiny-{model_type}")
    rows = TINY[model_type][0]
    run_id = _train(publish_panel, model, tiny_assets, f"ship {model_type}")

    # What the run did to the extension's 384 new rows, as its start event states it.
    with publish_panel.client() as c:
        (start,) = [e["data"] for e in c.get(f"/api/runs/{run_id}/events?kind=start").json()]
        evals = [e["data"] for e in c.get(f"/api/runs/{run_id}/events?kind=eval").json()]
    vocab = start["vocabulary"]
    assert vocab["base_tokenizer"] == 384 and vocab["tokenizer"] == 768, vocab
    assert vocab["tied"] is (model_type in TIED), vocab
    if model_type == "qwen2":  # 832 padded rows hold the whole extension: none grown
        assert vocab["reused_padded_rows"] == 384 and vocab["rows"] == rows == 832, vocab
        assert "384 padded rows of the 832-row matrix reused" in vocab["message"], vocab
    else:  # 384 rows, no padding: grown to 768, the head still the embedding
        assert vocab["reused_padded_rows"] == 0 and vocab["rows"] == 768, vocab
        assert vocab["tied"] is True
    last_bpc = [e["eval_kn_bits_per_char"] for e in evals if "eval_kn_bits_per_char" in e]
    assert last_bpc, evals

    page = publish_ui.page
    publish_ui.goto(f"/runs/{run_id}")
    table = page.get_by_test_id("checkpoints")
    table.wait_for(timeout=30_000)
    row = table.locator("tbody tr", has_text="checkpoint-4")
    row.get_by_role("button", name="Merge & export").click()
    page.get_by_role("button", name="Merge and export").click()
    row.locator("[data-testid=merge-state][data-status=succeeded]").wait_for(timeout=300_000)

    repo_id = f"erin/tiny-{model_type}-kn"
    box = page.get_by_test_id("ship")
    assert box.get_by_label("Checkpoint").input_value() == "checkpoint-4"
    box.get_by_label("Hub repo").fill(repo_id)
    box.get_by_role("button", name="Publish").click()
    line = box.locator("[data-testid=publish-job]")
    line.wait_for(timeout=30_000)
    page.wait_for_function(
        "() => ['succeeded', 'failed', 'canceled'].includes("
        "document.querySelector('[data-testid=publish-job]')?.dataset.status)",
        timeout=300_000,
    )
    assert line.get_attribute("data-status") == "succeeded", line.inner_text()
    assert f"to {repo_id} (private)" in line.inner_text()
    screenshot(page, f"run-publish-{model_type}", docs=False)

    # What the Hub received: the repo named in the form, private, with the token the panel holds.
    repo = hub_api.accounts.published[repo_id]
    assert repo["create"]["visibility"] == "private" and repo["commits"] == 1, repo["create"]
    files = repo["files"]
    assert {"README.md", "config.json", "model.safetensors", "tokenizer.json"} <= set(files)
    assert not {"optimizer.pt", "adapter_model.safetensors"} & set(files), sorted(files)
    writes = [r for r in hub_api.accounts.requests if f"/{repo_id}/" in r["path"]]
    assert writes and all(r["token"] == PUBLISH_TOKEN for r in writes)
    # The merged model's config: its architecture, its rows, tied or not.
    config = json.loads(files["config.json"])
    assert config["model_type"] == model_type and config["vocab_size"] == vocab["rows"]
    assert bool(config.get("tie_word_embeddings")) is (model_type in TIED), config
    from safetensors.torch import load

    weights = load(files["model.safetensors"])
    embed = next(v for k, v in weights.items() if k.endswith("embed_tokens.weight"))
    assert embed.shape[0] == vocab["rows"]
    # Tied: one matrix saved, the head is the embedding; untied: a head of the same rows.
    heads = [v for k, v in weights.items() if k.endswith("lm_head.weight")]
    assert [h.shape[0] for h in heads] == ([] if model_type in TIED else [vocab["rows"]])

    # The card: the run's bits/char (as the card writes them) and its config.
    card = files["README.md"].decode()
    assert card in hub_api.accounts.validated  # the Hub checked the card's YAML header
    assert "## Evaluation: bits per character" in card
    assert "| kn |" in card and f"{last_bpc[-1]:.4g}" in card, card
    assert vocab["message"] in card
    assert "## Training config" in card and f"model_name_or_path: {model}" in card, card
    assert (
        "max_steps: 4" in card
        and f"tokenizer_name_or_path: {tiny_assets['tokenizer_extended']}" in card
    )
