"""What the thin CLIs (``tools/report.py``, ``tools/plan.py``) share: bad input is one line ``error: ...`` on
stderr and exit status 2, never a traceback."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, NoReturn

__all__ = ["OneLineErrorParser", "run_cli"]


def _fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


class OneLineErrorParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one ``error: ...`` line (exit 2), without the usage block."""

    def error(self, message: str) -> NoReturn:
        _fail(message)


def run_cli(main: Callable[[], Any]) -> Any:
    """Calls ``main()``; a ValueError (bad input, named by the library) or OSError (a file that cannot be read or
    written) becomes one ``error: ...`` line and exit status 2."""
    try:
        return main()
    except (ValueError, OSError) as err:
        _fail(str(err))
