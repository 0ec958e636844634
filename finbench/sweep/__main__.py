"""`python -m finbench.sweep plan|run SWEEP`."""

import sys

from finbench.sweep.cli import main

sys.exit(main())
