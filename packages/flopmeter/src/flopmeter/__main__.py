import sys

from flopmeter.cli import main

sys.exit(main())
