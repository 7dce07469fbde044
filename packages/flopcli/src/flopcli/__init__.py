"""The command-line convention every flopwise command shares (standard library only): one line ``error: ...``
and exit status 2 for bad input, no traceback unless ``--debug``; status 3 and ``interrupted: ...`` for a
command stopped by a signal that a rerun resumes; numeric flag types checked while parsing."""

from flopcli.arguments import (
    fraction,
    int_at_least,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)
from flopcli.convention import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    USER_ERRORS,
    ArgumentParser,
    CommandError,
    Interrupted,
    about,
    run,
)

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
    "fraction",
    "int_at_least",
    "non_negative_float",
    "non_negative_int",
    "positive_float",
    "positive_int",
    "run",
]

__version__ = "0.2.0"
