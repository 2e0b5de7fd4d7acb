"""The seed's example command, unchanged apart from paths and the CPU precision flags.

``shared/seed/continual-pretraining-overview.md``: torchrun + DeepSpeed ZeRO-2, LoRA on all
projections with embed_tokens/lm_head trained in full, an extended tokenizer. On CPU ``--fp16`` is
dropped, ``--torch_dtype float16`` becomes ``float32`` and ``--use_cpu`` is added.
"""

from __future__ import annotations

import json
import math
import shlex
from pathlib import Path

from tests.support.pretrain import DS_CONFIGS, assert_trained, output_of, run_pretrain

SEED_COMMAND = """
    --deepspeed {ds_config} \\
    --model_name_or_path {model} \\
    --tokenizer_name_or_path {tokenizer} \\
    --dataset_dir {dataset} \\
    --data_cache temp_data_cache_dir \\
    --validation_split_percentage 0.001 \\
    --per_device_train_batch_size 1 \\
    --per_device_eval_batch_size 1 \\
    --do_train \\
    --seed 12345 \\
    --num_train_epochs 1 \\
    --lr_scheduler_type cosine \\
    --learning_rate 2e-4 \\
    --warmup_ratio 0.05 \\
    --weight_decay 0.01 \\
    --logging_strategy steps \\
    --logging_steps 10 \\
    --save_strategy steps \\
    --save_total_limit 3 \\
    --save_steps 200 \\
    --gradient_accumulation_steps 8 \\
    --preprocessing_num_workers 8 \\
    --block_size 512 \\
    --output_dir output_dir \\
    --overwrite_output_dir \\
    --ddp_timeout 30000 \\
    --logging_first_step True \\
    --lora_rank 8 \\
    --lora_alpha 32 \\
    --trainable q_proj,v_proj,k_proj,o_proj,gate_proj,down_proj,up_proj \\
    --modules_to_save embed_tokens,lm_head \\
    --lora_dropout 0.05 \\
    --torch_dtype float32 \\
    --gradient_checkpointing \\
    --ddp_find_unused_parameters False \\
    --use_cpu
"""


def test_seed_example_command(tiny_assets: dict[str, Path], tmp_path: Path) -> None:
    text = SEED_COMMAND.format(
        ds_config=DS_CONFIGS / "ds_zero2_no_offload.json",
        model=tiny_assets["model"],
        tokenizer=tiny_assets["tokenizer_extended"],
        dataset=tiny_assets["corpus"],
    )
    args = shlex.split(text.replace("\\\n", " "))
    # Relative paths (output_dir, temp_data_cache_dir) land in the working directory, as in the seed.
    proc = run_pretrain(args, nproc=1, cwd=tmp_path, timeout=300)
    out = tmp_path / "output_dir"
    events = assert_trained(proc, out)
    assert "vocabulary extended from 384 to 768 tokens" in output_of(proc)
    assert any((tmp_path / "temp_data_cache_dir").iterdir())  # --data_cache → --data_cache_dir
    start = next(e for e in events if e["kind"] == "start")
    assert start["tokens_per_step"] == 512 * 8 and start["num_train_epochs"] == 1
    logs = [e for e in events if e["kind"] == "log"]
    assert logs[0]["step"] == 1 and logs[1]["step"] == 10  # logging_first_step, logging_steps 10
    warmup = math.ceil(0.05 * start["max_steps"])
    assert logs[0]["learning_rate"] < 2e-4 / max(warmup, 1) + 1e-12  # warm-up from --warmup_ratio
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert set(adapter["target_modules"]) == {
        "q_proj",
        "v_proj",
        "k_proj",
        "o_proj",
        "gate_proj",
        "down_proj",
        "up_proj",
    }
    assert adapter["r"] == 8 and adapter["lora_alpha"] == 32 and adapter["lora_dropout"] == 0.05
    end = events[-1]
    assert end["status"] == "succeeded" and end["perplexity"] == math.exp(end["eval_loss"])
