import sys

from worker.hub.cli import main

sys.exit(main())
