import sys

from worker.data.cli import main

sys.exit(main())
