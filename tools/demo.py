"""`flopwise-demo` from a checkout (`python tools/demo.py --help`); the command lives in
packages/flopstudy/src/flopstudy/cli/demo.py."""

import sys

from flopstudy.cli.demo import main

if __name__ == "__main__":
    sys.exit(main())
