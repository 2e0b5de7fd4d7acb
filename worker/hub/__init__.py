"""Models and datasets from where users keep them, as job tools: ``python -m worker.hub
download`` (a Hub repo, ``download.py``) and ``import-gguf`` (``importer.py`` + ``gguf.py``)."""
