"""Errors of the user's own code (a method class, a sweep config file, a module named by an import path).

Such code may raise anything (a RuntimeError in ``__init__``, a SyntaxError in a config file, a KeyError in
``get_config``). ``with user_code("--config cfg.py: get_config()"):`` turns any exception raised inside into a
`UserCodeError` (a ValueError, so `run` prints it as one ``error:`` line with status 2) whose message names the
code and the exception, e.g. ``--config cfg.py: get_config() raised KeyError: 'x'``; the original exception is
its ``__cause__``, which ``--debug`` prints with the traceback. KeyboardInterrupt and SystemExit pass through.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = ["UserCodeError", "user_code"]


class UserCodeError(ValueError):
    """The user's code raised; the message names the code and the exception, ``__cause__`` is the exception."""


def _describe(error: BaseException) -> str:
    """``TypeName: message`` on one line (``TypeName`` alone for an exception without a message)."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


@contextlib.contextmanager
def user_code(what: str) -> Iterator[None]:
    """Runs the block as the user's code ``what`` (module docstring); a `UserCodeError` raised inside (user code
    calling user code) passes unchanged."""
    try:
        yield
    except UserCodeError:
        raise
    except Exception as error:
        raise UserCodeError(f"{what} raised {_describe(error)}") from error
