"""The tokenizer engine: train, extend (merge), measure and check tokenizers.

Run as ``python -m worker.tokenizer {train,merge,fertility,check} ...`` (see ``--help``), or
call the library functions, which return dataclasses with the figures:

- ``train.train`` — a SentencePiece model from text;
- ``merge_sp.merge_sentencepiece`` — new pieces appended to a SentencePiece base;
- ``merge_bpe.merge_byte_level_bpe`` — new merges appended to a byte-level BPE base;
- ``fertility.fertility`` — tokens per word/character, bytes per token, byte-fallback rates;
- ``check.check_extension`` — reachability, unchanged base ids, base-language fertility.

Nothing here imports the panel; it needs only transformers, tokenizers, sentencepiece and
protobuf.
"""
