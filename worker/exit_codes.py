"""The training script's exit codes, for the script and for the worker that reads them
(stdlib only: the worker need not import torch to know what exit 2 means)."""

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_DIVERGED, EXIT_OOM, EXIT_CANCELLED = 0, 1, 2, 3, 4, 143
