"""`python -m stacks ...`: offline tooling for the Pulumi program (no CLI, no credentials, no network)."""

import sys

from stacks.cli import main

sys.exit(main())
