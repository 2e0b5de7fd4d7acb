"""Hub transfers run as jobs: ``python -m worker.hub download`` (``download.py``)."""
