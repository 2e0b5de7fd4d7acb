"""Loading a tokenizer directory the way every recipe tool does.

transformers routes Mistral-type directories through mistral-common's tokenizer backend, and
imports it as soon as it is installed (with Pillow present), even for a directory that has only
``tokenizer.json``; mistral-common's own imports (tiktoken, jsonschema, …) are not installed
here (it ships only Mistral's tokenizer files). Such a directory loads as the fast tokenizer its
``tokenizer.json`` describes, which is what the panel trains, merges and serves.
"""

from __future__ import annotations

from typing import Any


def auto_tokenizer(path: str, **kwargs: Any) -> Any:
    """``AutoTokenizer.from_pretrained(path)``, or the fast tokenizer of ``tokenizer.json`` when
    transformers cannot import the backend it picked."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path, **kwargs)
    except ImportError:
        from transformers import PreTrainedTokenizerFast

        return PreTrainedTokenizerFast.from_pretrained(path, **kwargs)
