"""``python -m rl.datasets make <name>``: see :mod:`rl.datasets.make`."""

import sys

from rl.datasets.make import main

if __name__ == "__main__":  # imported by the API reference without running
    sys.exit(main())
