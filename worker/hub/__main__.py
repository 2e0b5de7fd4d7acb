import sys

from worker.hub.download import main

sys.exit(main())
