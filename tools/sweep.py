"""`flopwise-sweep` from a checkout (`python tools/sweep.py --help`); the command lives in
packages/flopstudy/src/flopstudy/cli/sweep.py."""

import sys

from flopstudy.cli.sweep import main

if __name__ == "__main__":
    sys.exit(main())
