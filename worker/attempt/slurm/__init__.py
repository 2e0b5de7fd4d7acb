"""The Slurm executor: a worker on a login node hands each run to ``sbatch`` and watches it.

``commands`` (sbatch/scontrol/scancel/sinfo as argv lists), ``script`` (the job script and the
sbatch options, pure), ``states`` (Slurm job states → the panel's phases and reasons),
``cluster`` (``sinfo`` → the heartbeat's cluster report), ``attempt`` (one run attempt).
"""
