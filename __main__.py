"""`python -m litmeta`: the litmeta command line."""

import sys

from litmeta.flows.cli import entry

sys.exit(entry())
