"""The data engine: text files → token blocks for causal-LM pretraining.

Standalone (numpy + a Hugging Face tokenizer; torch only for the datasets in ``torch_data``), used
by ``worker/pretrain.py`` through ``worker/training/data.py`` and runnable alone::

    python -m worker.data prepare --dataset_dir D --tokenizer T --block_size N --data_cache_dir C
    python -m worker.data stats   --dataset_dir D --tokenizer T --block_size N
    python -m worker.data scan PATH... [--tokenizer T --block_size N] [--json OUT]

Modules: ``documents`` (discovery, chunked UTF-8/JSONL reading), ``encoding`` (Rust batch
encoding to numpy, tokenizer fingerprint), ``packing`` (``eos``/``classic`` blocks), ``files``
(one file → blocks, the per-file memory-mapped cache), ``sources`` (``--data_sources``),
``mixture`` (hold-out, weighted draws), ``torch_data`` (the Trainer's datasets), ``training``
(a run's train/eval sets), ``scan`` (a dataset report), ``cli``.
"""

from worker.data.errors import DataError

__all__ = ["DataError"]
