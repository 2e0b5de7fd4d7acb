"""Sub-commands of ``backend.cli`` beyond ``serve``: the worker, ``up`` and the ``runs`` client."""
