"""One attempt of one run, from claim to outcome: launch, process tree, shipping, stall and root
cause, the executor (this box or Slurm), and the services an attempt talks through (the API
client, the run registry, GPU leases).

The middle layer of the worker: it may use the recipe (``worker.pretrain`` and its libraries)
but never the agent above it.
"""
