"""`flopwise-profile` from a checkout (`python tools/profile_flops.py --help`); the command lives in
packages/sslmethods/src/sslmethods/cli/profile_flops.py."""

import sys

from sslmethods.cli.profile_flops import main

if __name__ == "__main__":
    sys.exit(main())
