"""A GGUF file (as Ollama and LM Studio keep models) → a plain Hugging Face model directory.

transformers reads the GGUF (with the ``gguf`` package) and dequantizes it; a model loaded that
way carries a quantization config and refuses ``save_pretrained``, so a plain model is built from
the config without it and the dequantized weights are copied in (a tied ``lm_head`` is the
embedding, so it may be absent). The tokenizer comes from the same file.
"""

from __future__ import annotations

from pathlib import Path


class GgufError(ValueError):
    """A file transformers cannot read as a model (not GGUF, or an unsupported architecture)."""


def convert_gguf(gguf: Path, out: Path, dtype: str = "float32") -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        quantized = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
        )
    except (ValueError, KeyError, OSError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise GgufError(f"{gguf.name} cannot be read as a model: {first}") from exc
    config_dict = quantized.config.to_dict()
    config_dict.pop("quantization_config", None)
    config = AutoConfig.for_model(**config_dict)
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = plain.load_state_dict(quantized.state_dict(), strict=False)
    missing = [k for k in missing if not (k == "lm_head.weight" and config.tie_word_embeddings)]
    if missing or unexpected:
        raise GgufError(f"{gguf.name}: weights missing {missing}, unexpected {unexpected}")
    plain.to(torch_dtype).save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
