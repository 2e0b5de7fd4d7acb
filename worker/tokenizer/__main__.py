"""``python -m worker.tokenizer``."""

import sys

from worker.tokenizer.cli import main

sys.exit(main())
