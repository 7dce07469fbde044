"""How every flopwise command ends: one line and an exit status a script can act on.

=======  =========================================================================================
status   meaning
=======  =========================================================================================
0        done
1        the command ran but some of its work failed and was recorded (e.g. a sweep's run)
2        bad input: one line ``error: <message>`` on stderr, no traceback (``--debug`` shows it)
3        interrupted (SIGTERM, SIGINT, a preemption) after saving what it had: one line
         ``interrupted: <message>``; running the same command again resumes
=======  =========================================================================================

`run(parser, body, argv)` is the whole convention: it parses ``argv`` with a `ArgumentParser` (whose usage
errors are one ``error:`` line, not argparse's usage block), calls ``body(args)``, and turns the library's own
errors (ValueError, TypeError, OSError and the ``errors`` a command adds, e.g. ``runloop.NonFiniteError``) into
``error: <message>`` and status 2. While ``body`` runs, SIGTERM is handled like SIGINT (a KeyboardInterrupt), so a
`kill` ends with a message and status 3 instead of a silent death; code that checkpoints on a signal
(``runloop.StopSignal``) installs its own handlers inside and restores ours after.

Example::

    def build_parser() -> flopcli.ArgumentParser:
        parser = flopcli.ArgumentParser(description=__doc__)
        parser.add_argument("--steps", type=flopcli.positive_int, required=True)
        return parser

    def body(args) -> int:
        ...                                   # raise ValueError naming the flag: "--steps 3: ..."
        return flopcli.EXIT_OK

    def main(argv=None) -> int:
        return flopcli.run(build_parser(), body, argv)
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "USER_ERRORS",
    "ArgumentParser",
    "CommandError",
    "Interrupted",
    "about",
    "run",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 3

# What a library raises for input it cannot use (a bad value, a missing or unreadable file): the user's to fix.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, TypeError, OSError)

_RESUME_HINT = "run the same command again to resume"


class CommandError(ValueError):
    """Bad input found by a command itself (a ValueError, so library callers treat it alike)."""


class Interrupted(Exception):
    """The command stopped early after saving its state (a preempted run): status 3, and the message says how
    to continue."""


class _UsageError(Exception):
    """An argparse usage error, raised instead of argparse's print-and-exit. Raised inside argparse's own
    ``except`` when a flag's type function failed, so its ``__context__`` keeps that error for ``--debug``."""


class ArgumentParser(argparse.ArgumentParser):
    """An ``argparse.ArgumentParser`` with the convention's ``--debug`` flag whose usage errors are raised (and
    printed by `run` as one ``error:`` line) instead of printing the usage block and exiting. The description
    keeps its line breaks (commands use their module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)
        self.add_argument("--debug", action="store_true", help="on an error, show the Python traceback")

    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


def _one_line(text: str) -> str:
    return " ".join(str(text).split()) or "(no message)"


def _say(prefix: str, message: str) -> None:
    sys.stdout.flush()
    print(f"{prefix}: {_one_line(message)}", file=sys.stderr, flush=True)


def _raise_keyboard_interrupt(signum: int, frame: Any) -> NoReturn:
    del frame
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # Python installs handlers only in the main thread
        return
    previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def about(flag: str) -> Iterator[None]:
    """Names ``flag`` in the errors raised inside: a library's ``ValueError("dataset 'x' is not built")`` becomes
    ``CommandError("--dataset: dataset 'x' is not built")`` (unless the message names the flag already)."""
    try:
        yield
    except USER_ERRORS as error:
        message = str(error)
        if message.startswith(flag):
            raise
        raise CommandError(f"{flag}: {message}") from error


def run(
    parser: argparse.ArgumentParser,
    body: Callable[[argparse.Namespace], int | None],
    argv: Sequence[str] | None = None,
    *,
    errors: tuple[type[BaseException], ...] = (),
    unknown_into: str | None = None,
) -> int:
    """Parses ``argv`` (default ``sys.argv[1:]``), runs ``body(args)`` and returns the exit status (module
    docstring); ``body`` returns a status or None (0). ``errors``: exception types besides `USER_ERRORS` that
    end as one ``error:`` line (status 2). ``unknown_into``: keep the arguments the parser does not know in this
    attribute of ``args`` (e.g. a sweep's ``--config.FIELD=VALUE`` overrides) instead of rejecting them."""
    try:
        if unknown_into is None:
            args = parser.parse_args(argv)
        else:
            args, unknown = parser.parse_known_args(argv)
            setattr(args, unknown_into, unknown)
    except _UsageError as error:
        if "--debug" in (sys.argv[1:] if argv is None else argv):  # not parsed: the flag's type function failed
            traceback.print_exception(error)
        _say("error", str(error))
        return EXIT_USAGE
    except SystemExit as done:  # --help, --version
        return done.code if isinstance(done.code, int) else EXIT_OK
    debug = bool(getattr(args, "debug", False))
    try:
        with _sigterm_interrupts():
            status = body(args)
        return EXIT_OK if status is None else int(status)
    except Interrupted as stop:
        _say("interrupted", str(stop))
        if debug:
            traceback.print_exc()
        return EXIT_INTERRUPTED
    except KeyboardInterrupt as stop:
        if debug:
            traceback.print_exc()
        name = str(stop) or "SIGINT"
        _say("interrupted", f"stopped by {name} before finishing; what was saved is kept: {_RESUME_HINT}")
        return EXIT_INTERRUPTED
    except (*USER_ERRORS, *errors) as error:
        if debug:
            traceback.print_exc()
        _say("error", str(error))
        return EXIT_USAGE
