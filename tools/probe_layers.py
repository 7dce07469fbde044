"""Probe every layer of a frozen encoder with linear segmentation probes (`python tools/probe_layers.py --help`);
the command lives in packages/segtransfer/src/segtransfer/cli/probe_layers.py."""

import sys

from segtransfer.cli.probe_layers import main

if __name__ == "__main__":
    sys.exit(main())
