"""The clean engine: ``python -m worker.clean`` turns sources into a new, cleaned dataset.

``text`` (words, normalised text, the quality heuristics), ``langid`` (the detector), ``minhash``
(signatures and the LSH index), ``pii`` (masking), ``steps`` (each step on a batch, with its
tallies and removed examples), ``pipeline`` (files, streaming, checkpoints, the atomic output),
``cli``. Imports nothing of the API; the step models are the contract's (``cpt_contract.clean``).
"""
