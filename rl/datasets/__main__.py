"""``python -m rl.datasets make <name>``: see :mod:`rl.datasets.make`."""

import sys

from rl.datasets.make import main

sys.exit(main())
