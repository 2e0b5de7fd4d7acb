"""The metrics store: numeric metrics as per-key columnar segments plus min/max/last levels.

Why: reading a chart from ``run_events`` meant reading and JSON-decoding every event of the run
whatever keys or ``max_points`` were asked for, so the query grew with the run (seconds and
hundreds of MB at 10^6 points); and one row per point made the insert the ingest's ceiling. Here

- ``metric_segments`` holds, per series (a run's key) and attempt, runs of up to
  ``segments.SEGMENT_POINTS`` consecutive points as packed columns (steps, values, times, tokens): a
  batch writes one row per key (the series' last segment grows in place until it is full);
- ``metric_levels`` holds, for each level k in ``levels.LEVELS``, one row per bucket ``step >> k`` with
  the count, first/last step, last value and the min and max points, updated in bulk by every
  ingest batch (a batch of 200 consecutive steps touches ~15 level rows per key);
- ``metric_attempts`` holds where each attempt starts (a resume takes over from that step).

A downsampled read picks the finest level with at most ``max_points / 2`` buckets in the range and
answers from those O(max_points) rows per key whatever the run's length (the range's first and
last points, and the part of a bucket cut by a zoomed range, come from at most a few segments).
``run_events`` stays the record for replay and exports. The modules:

- ``segments.py``: the points, packed per series and attempt (write and point reads);
- ``levels.py``: the buckets of every width 2^k, folded from the points;
- ``write.py``: a batch of events into both (what ingest calls);
- ``read.py``: a chart's answer, O(max_points) rows per key.
"""
