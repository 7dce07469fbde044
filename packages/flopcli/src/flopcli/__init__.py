"""The command-line convention every flopwise command shares (standard library only): one line ``error: ...``
and exit status 2 for bad input, no traceback unless ``--debug``; status 3 and ``interrupted: ...`` for a
command stopped by a signal that a rerun resumes; numeric flag types checked while parsing; flags generated
from a spec dataclass and back (`spec_field`, `add_spec_flags`, `spec_from_flags`, `spec_to_flags`); errors of the
user's own code (a method class, a config file) as one line naming the code and the exception (`user_code`)."""

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
from flopcli.spec_flags import add_spec_flags, flag_name, spec_field, spec_from_flags, spec_to_flags
from flopcli.user_code import UserCodeError, user_code

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "USER_ERRORS",
    "ArgumentParser",
    "CommandError",
    "Interrupted",
    "UserCodeError",
    "about",
    "add_spec_flags",
    "flag_name",
    "fraction",
    "int_at_least",
    "non_negative_float",
    "non_negative_int",
    "positive_float",
    "positive_int",
    "run",
    "spec_from_flags",
    "spec_field",
    "spec_to_flags",
    "user_code",
]

__version__ = "0.2.0"
