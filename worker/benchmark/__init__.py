"""The evaluation job's tool: lm-evaluation-harness tasks scored on one training checkpoint.

``python -m worker.benchmark`` (``__main__.py``) loads the checkpoint as ``worker.generate`` does
(a LoRA adapter on its base, no merge; or full weights), reads the user's task files
(``taskfiles.py``: the harness's YAML format over local data, checked against the allowed roots,
no ``!function`` code) and the harness's own tasks by name, runs them (``harness.py``) and writes
per task and metric its value and standard error as the job's result.
"""
