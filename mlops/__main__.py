"""`python -m mlops ...`: see mlops/cli.py."""

from mlops.cli import run

run()
