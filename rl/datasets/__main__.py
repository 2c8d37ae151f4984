"""``python -m rl.datasets make <name>``: see :mod:`rl.datasets.make`."""

import sys

from rl.datasets.make import main

if __name__ == "__main__":  # imported by the API reference without running
    from rl.interrupt import run_main

    sys.exit(run_main(main, "Rerun the same command to resume the collection."))
