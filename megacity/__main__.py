"""`python -m megacity` runs the CLI."""

import sys

from megacity.cli import main

sys.exit(main())
