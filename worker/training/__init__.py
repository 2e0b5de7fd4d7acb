"""The pieces of ``worker/pretrain.py``, one module per responsibility.

``worker/pretrain.py`` is the recipe that runs them in order; these modules hold the details
(arguments, tokenizer, data, model, checkpoints, callbacks, failures).
"""
