"""`python -m experiments.bench`: the bench command line (and its worker subprocesses)."""

import sys

from experiments.bench.cli import main

sys.exit(main())
