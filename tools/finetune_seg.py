"""`flopwise-finetune-seg` from a checkout (`python tools/finetune_seg.py --help`); the command lives in
packages/segtransfer/src/segtransfer/cli/finetune_seg.py."""

import sys

from segtransfer.cli.finetune_seg import main

if __name__ == "__main__":
    sys.exit(main())
