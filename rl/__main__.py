"""``python -m rl --algo <name> --env <id>``: the shared runner for any registered algorithm."""

import sys

from rl.cli import main

if __name__ == "__main__":  # imported by the API reference without running
    sys.exit(main())
