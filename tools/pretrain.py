"""`flopwise-pretrain` from a checkout (`python tools/pretrain.py --help`); the command lives in
packages/sslmethods/src/sslmethods/cli/pretrain.py."""

import sys

from sslmethods.cli.pretrain import main

if __name__ == "__main__":
    sys.exit(main())
