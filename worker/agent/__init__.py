"""The worker's agent: start-up, the Celery app and its tasks, the heartbeat, the jobs.

The top layer of the worker (``docs/architecture.md``, "The worker in three layers"): it takes
work from the broker and hands each run to ``worker.attempt``.
"""
