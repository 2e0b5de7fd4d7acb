"""Bounds and defaults both sides must agree on, spelled once: integer bounds, the reason
column's length, the worker queue's default and shape, the automatic-restart default.

A value past these is a 422 at its field, never a 500 from the database; the database's
columns (``backend/models.py``), the run-config schema, the wire protocol and the job
parameters all take them from here.
"""

from __future__ import annotations

#: The largest integer the database's integer columns hold (PostgreSQL ``integer``).
INT32 = 2**31 - 1
#: The largest integer of a ``BIGINT`` column (token counts, byte sizes).
INT64 = 2**63 - 1

#: The worker queue a run and a worker use when none is named (one queue per GPU box).
DEFAULT_QUEUE = "gpu"
#: What a queue's name may be (a Celery queue name and a column of 64 characters).
QUEUE_MAX = 64
QUEUE_PATTERN = rf"^[A-Za-z0-9_.-]{{1,{QUEUE_MAX}}}$"

#: A run's and a job's reason (a text column; longer reasons are cut, never refused).
REASON_MAX = 2000

#: Automatic restarts of an interrupted run (``training.max_restarts``'s default).
DEFAULT_MAX_RESTARTS = 3
