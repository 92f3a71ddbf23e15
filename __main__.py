"""`python -m litmeta`: the litmeta command line."""

import sys

from litmeta.flows.cli import main

sys.exit(main())
