"""``python -m rl --algo <name> --env <id>``: the shared runner for any registered algorithm."""

import sys

from rl.cli import main

sys.exit(main())
