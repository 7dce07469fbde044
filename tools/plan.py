"""`flopwise-plan` from a checkout (`python tools/plan.py --help`); the command lives in
packages/flopstudy/src/flopstudy/cli/plan.py."""

import sys

from flopstudy.cli.plan import main

if __name__ == "__main__":
    sys.exit(main())
