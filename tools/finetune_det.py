"""Fine-tune an encoder as a Mask R-CNN backbone on COCO or fmnist_scenes (`python tools/finetune_det.py --help`);
the command lives in packages/segtransfer/src/segtransfer/cli/finetune_det.py."""

import sys

from segtransfer.cli.finetune_det import main

if __name__ == "__main__":
    sys.exit(main())
