"""The contract between the API and the worker: what both sides must agree on, defined once.

Settings, the run-config schema (validation, OpenAPI, the form, the argv), the broker
configuration, the run-directory layout, the statuses and the ``/api/internal`` wire protocol.
It imports neither ``backend`` nor ``worker`` (checked by ``lint-imports``).
"""
