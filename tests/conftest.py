"""The test suite's shared fixtures, as plugins (no star imports): real Redis, a real API, a real
Celery worker and a tiny local Llama (``support/panel.py``), one API server for the API tier
(``support/api.py``), Chromium for the browser tier (``support/ui.py``), and real runs of the
training script (``support/pretrain.py``), a local Hub endpoint (``support/hub.py``) and the
Hub's account side (``support/hub_api.py``).
"""

pytest_plugins = [
    "tests.support.panel",
    "tests.support.api",
    "tests.support.ui",
    "tests.support.pretrain",
    "tests.support.hub",
    "tests.support.hub_api",
]
