"""`flopwise-report` from a checkout (`python tools/report.py --help`); the command lives in
packages/flopstudy/src/flopstudy/cli/report.py."""

import sys

from flopstudy.cli.report import main

if __name__ == "__main__":
    sys.exit(main())
