"""`flopwise-sweep-flops` from a checkout (`python tools/sweep_flops.py --help`); the command lives in
packages/flopstudy/src/flopstudy/cli/sweep_flops.py."""

import sys

from flopstudy.cli.sweep_flops import main

if __name__ == "__main__":
    sys.exit(main())
