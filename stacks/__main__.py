"""`python -m stacks ...`: offline tooling for the Pulumi program (no CLI, no credentials, no network)."""

import gc
import os
import sys

# A plan imports ~10^5 provider SDK objects that live until exit: cyclic GC passes over them cost about
# 2 s and free nothing, and so does interpreter teardown. This process is short-lived and writes its
# files before returning, so it skips both.
gc.disable()

from stacks.cli import main  # noqa: E402 - after gc.disable, which must precede the heavy imports

code = main()
sys.stdout.flush()
sys.stderr.flush()
os._exit(code)
