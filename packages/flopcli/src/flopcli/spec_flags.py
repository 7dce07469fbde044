"""Command-line flags generated from a frozen spec dataclass, and back: one list of options, every one reachable.

A *spec* is a frozen dataclass whose fields carry ``metadata={"help": ...}`` (and optionally ``"type"``: a flag
type such as `flopcli.positive_float` for the value, or for each item of a tuple; ``"metavar"``; ``"nargs"``)
and which has a ``validate()`` raising ValueError; `spec_field` declares such a field. Each field ``name``
becomes the flag ``--name`` (underscores as dashes):

=====================  ===========================================================================
field type             flag
=====================  ===========================================================================
``int``/``float``/str  ``--name VALUE``
``bool``               ``--name`` / ``--no-name``
``tuple[T, ...]``      ``--name A,B,C`` (a comma list; ``--name A`` is a one-item tuple)
``T | None``           ``--name VALUE``, or ``--name none`` for None
``tuple`` + ``nargs``  ``--name A B C`` (``"nargs": "+"``: items that may hold commas)
=====================  ===========================================================================

`add_spec_flags(parser, Spec, base=...)` adds them (help = the field's docstring and ``base``'s value as the
default); `spec_from_flags(Spec, args, base=...)` is ``base`` with the flags the user gave, validated, errors
naming the flag; `spec_to_flags(spec)` is the flags that rebuild ``spec`` exactly (for a printed command).

Example::

    parser = flopcli.ArgumentParser()
    flopcli.add_spec_flags(parser, SegmentationSpec, base=SegmentationSpec())
    spec = flopcli.spec_from_flags(SegmentationSpec, parser.parse_args(argv), base=SegmentationSpec())
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from flopcli.convention import CommandError

__all__ = ["add_spec_flags", "flag_name", "spec_field", "spec_from_flags", "spec_to_flags"]

NONE_TEXT = "none"


def spec_field(default: Any, help: str, type: Any = None, **flag: Any) -> Any:  # noqa: A002 (the metadata's keys)
    """A spec's field: its default, its documentation, optionally the flag type of its value (or items) and
    ``metavar``/``nargs`` of its flag."""
    return dataclasses.field(default=default, metadata={"help": help, **({"type": type} if type else {}), **flag})


def flag_name(field: str) -> str:
    """``head_channels`` -> ``--head-channels``."""
    return "--" + field.replace("_", "-")


def _shape(tp: Any) -> tuple[Any, bool, bool]:
    """(scalar type, optional?, tuple?) of a field's annotation."""
    optional = False
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        optional, tp = len(args) < len(typing.get_args(tp)), args[0]
        if len(args) != 1:
            raise TypeError(f"{tp!r}: a spec field is one type, optionally | None")
    if typing.get_origin(tp) is tuple:
        return typing.get_args(tp)[0], optional, True
    return tp, optional, False


def _scalar(kind: Any) -> Callable[[str], Any]:
    if kind is int:
        return int
    if kind is float:
        def number(text: str) -> float:
            value = float(text)
            if not math.isfinite(value):
                raise ValueError(text)
            return value
        return number
    if kind is str:
        return str
    raise TypeError(f"{kind!r}: a spec field holds int, float, str, bool or a tuple of them")


def _parser_of(field: dataclasses.Field, tp: Any) -> Callable[[str], Any]:
    """The argparse ``type`` of a non-bool field: "none" -> None when optional, comma lists for tuples."""
    kind, optional, many = _shape(tp)
    one = field.metadata.get("type") or _scalar(kind)

    def parse(text: str) -> Any:
        if optional and text.strip().lower() == NONE_TEXT:
            return None
        try:
            if many and "nargs" in field.metadata:  # one word per item: argparse collects them into a list
                return one(text)
            if many:
                items = [t.strip() for t in text.split(",")]
                if not all(items):
                    raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}")
                return tuple(one(t) for t in items)
            return one(text)
        except (ValueError, TypeError):
            raise argparse.ArgumentTypeError(f"expected {_what(kind, optional, many)}, got {text!r}") from None

    parse.__name__ = getattr(one, "__name__", "value")
    return parse


def _what(kind: Any, optional: bool, many: bool) -> str:
    text = {int: "an integer", float: "a number", str: "a string"}.get(kind, kind.__name__)
    text = f"a comma-separated list of {text.removeprefix('an ').removeprefix('a ')}s" if many else text
    return f"{text} or {NONE_TEXT!r}" if optional else text


def _text(value: Any) -> str:
    """A value as its flag text (the inverse of the parse above)."""
    if value is None:
        return NONE_TEXT
    if isinstance(value, tuple):
        return ",".join(_text(v) for v in value)
    return repr(value) if isinstance(value, float) else str(value)


def _fields(spec_type: type) -> list[tuple[dataclasses.Field, Any]]:
    hints = typing.get_type_hints(spec_type)
    return [(f, hints[f.name]) for f in dataclasses.fields(spec_type) if f.init]


def add_spec_flags(
    parser: argparse.ArgumentParser,
    spec_type: type,
    *,
    base: Any,
    aliases: Mapping[str, Sequence[str]] | None = None,
    notes: Mapping[str, str] | None = None,
    required: Sequence[str] = (),
    choices: Mapping[str, Sequence[Any]] | None = None,
    exclusive: Sequence[Sequence[str]] = (),
) -> None:
    """One flag per field of ``spec_type`` (module docstring). ``base``: the spec whose values are the command's
    defaults (shown in the help); ``aliases``: field -> extra flag names (e.g. an older spelling); ``notes``:
    field -> what the help says instead of ``(default: ...)``, for a default the command works out itself;
    ``required``: fields the user must give; ``choices``: field -> the values allowed; ``exclusive``: groups of
    fields at most one of which may be given. A flag not given is left out of ``args`` (`spec_from_flags` keeps
    ``base``'s value)."""
    aliases, notes, choices = aliases or {}, notes or {}, choices or {}
    names = {f.name for f, _ in _fields(spec_type)}
    for name in [*aliases, *notes, *required, *choices, *(n for group in exclusive for n in group)]:
        if name not in names:
            raise TypeError(f"{name!r} is not a field of {spec_type.__name__}")
    groups = {}
    for group in exclusive:
        shared = parser.add_mutually_exclusive_group()
        groups |= dict.fromkeys(group, shared)
    for field, tp in _fields(spec_type):
        if "help" not in field.metadata:
            raise TypeError(f"{spec_type.__name__}.{field.name} has no help text (metadata={{'help': ...}})")
        default = getattr(base, field.name)
        text = field.metadata["help"]
        if field.name in notes:
            text += f" ({notes[field.name]})"
        elif field.name not in required:
            text += f" (default: {_text(default)})"
        flags = [flag_name(field.name), *aliases.get(field.name, ())]
        target = groups.get(field.name, parser)
        options: dict[str, Any] = {"dest": field.name, "help": text.replace("%", "%%"), "default": argparse.SUPPRESS}
        if tp is bool:
            target.add_argument(*flags, action=argparse.BooleanOptionalAction, **options)
            continue
        kind, optional, many = _shape(tp)
        nargs = field.metadata.get("nargs") if many else None
        metavar = (field.metadata.get("metavar", "A,B,...") if many else None if field.name in choices
                   else field.metadata.get("metavar", field.name.upper()))
        target.add_argument(*flags, type=_parser_of(field, tp), metavar=metavar, required=field.name in required,
                            choices=choices.get(field.name), nargs=nargs, **options)


def spec_from_flags(spec_type: type, args: argparse.Namespace, *, base: Any) -> Any:
    """``base`` with every field the user gave in ``args``, validated; a `CommandError` naming the flag of
    the field ``validate()`` complains about (its message starts with the field's name: ``name=value: ...``
    becomes ``--name: name=value: ...``, ``name rest`` becomes ``--name rest``)."""
    given = {f.name: getattr(args, f.name) for f, _ in _fields(spec_type) if hasattr(args, f.name)}
    given = {k: tuple(v) if isinstance(v, list) else v for k, v in given.items()}  # nargs lists as tuples
    try:
        spec = dataclasses.replace(base, **given)
        spec.validate()
    except ValueError as error:
        message = str(error)
        named = [f.name for f, _ in _fields(spec_type) if message.startswith((f"{f.name}=", f"{f.name} "))]
        if not named:
            raise
        if message.startswith(f"{named[0]} "):  # "set method.foo: ..." -> "--set method.foo: ..."
            raise CommandError(f"{flag_name(named[0])} {message[len(named[0]) + 1:]}") from error
        raise CommandError(f"{flag_name(named[0])}: {message}") from error
    return spec


def spec_to_flags(spec: Any, *, skip: Sequence[str] = ()) -> list[str]:
    """The flags that rebuild ``spec`` whatever the command's defaults: every field but ``skip``, in order."""
    out: list[str] = []
    for field, tp in _fields(type(spec)):
        if field.name in skip:
            continue
        value = getattr(spec, field.name)
        if tp is bool:
            out.append(flag_name(field.name) if value else "--no-" + field.name.replace("_", "-"))
        elif "nargs" in field.metadata and isinstance(value, tuple):
            # an empty list has no flag form: the field's default must then be empty (checked by the tests)
            out += [flag_name(field.name), *map(_text, value)] if value else []
        else:
            out += [flag_name(field.name), _text(value)]
    return out
