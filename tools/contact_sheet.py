"""`flopwise-contact-sheet` from a checkout (`python tools/contact_sheet.py --help`); the command lives in
packages/flopdata/src/flopdata/cli/contact_sheet.py."""

import sys

from flopdata.cli.contact_sheet import main

if __name__ == "__main__":
    sys.exit(main())
