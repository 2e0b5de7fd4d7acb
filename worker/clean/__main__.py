import sys

from worker.clean.cli import main

sys.exit(main())
