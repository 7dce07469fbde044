"""`flopwise-build-dataset` from a checkout (`python tools/build_dataset.py --help`); the command lives in
packages/flopdata/src/flopdata/cli/build_dataset.py."""

import sys

from flopdata.cli.build_dataset import main

if __name__ == "__main__":
    sys.exit(main())
