"""Dotted overrides of a run's method, optimizer and backbone fields, checked against their dataclasses.

One syntax for every entry point (``tools/pretrain.py --set``, sweep variants)::

    ov = parse_overrides(["optim.lr=1e-3", "method.mask_ratio=0.65"], MAE)
    ov.method == {"mask_ratio": 0.65}; ov.optim == {"lr": 0.001}
    method, optim = recipes.build_method("mae", "vit-test", preset="demo", total_steps=100, **ov.build_kwargs())

Sections: ``method`` (the method class's hyperparameters: its dataclass fields except ``backbone`` and
``total_steps``, which the run sets), ``optim`` (`OptimConfig`) and ``model`` (`vitcore.ViTConfig`). A value is
read as a Python literal (``1e-3``, ``(1, 2)``, ``None``, ``True``; ``none``/``true``/``false`` too), else as
text, and must match the field's annotation (an int is accepted for a float field and stored as float, so
``optim.lr=1`` and ``optim.lr=1.0`` are the same override). An unknown section or field, or a wrong type, is a
ValueError naming it and the valid ones, raised before anything is built. Ranges (``0 < mask_ratio < 1``) are the
classes' own checks, at construction.
"""

from __future__ import annotations

import ast
import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

import vitcore

from .optim import OptimConfig

__all__ = ["SECTIONS", "Overrides", "check_fields", "check_overrides", "field_types", "parse_overrides",
           "parse_value"]

SECTIONS = ("method", "optim", "model")
RUN_FIELDS = ("backbone", "total_steps")  # a method's fields that the run sets, never an override


@dataclasses.dataclass(frozen=True)
class Overrides:
    """Typed, checked overrides per section (field name -> value)."""

    method: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    optim: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    model: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def build_kwargs(self) -> dict[str, dict[str, Any]]:
        """``method_overrides``, ``optim_overrides``, ``model_overrides`` for ``recipes.build_method``."""
        return {"method_overrides": dict(self.method), "optim_overrides": dict(self.optim),
                "model_overrides": dict(self.model)}

    def assignments(self) -> tuple[str, ...]:
        """Canonical ``section.field=value`` strings, sorted: the same overrides always give the same text."""
        return tuple(sorted(f"{section}.{name}={_format(value)}" for section in SECTIONS
                            for name, value in getattr(self, section).items()))

    def merged(self, other: Overrides) -> Overrides:
        """These overrides with ``other``'s on top (``other`` wins per field)."""
        return Overrides(**{s: {**getattr(self, s), **getattr(other, s)} for s in SECTIONS})


def _format(value: Any) -> str:
    return repr(value) if not isinstance(value, str) else value


def field_types(section: str, method_cls: type) -> dict[str, Any]:
    """Field name -> annotation of ``section`` ("method", "optim" or "model") for methods of ``method_cls``."""
    if section == "method":
        owner: type = method_cls
    elif section == "optim":
        owner = OptimConfig
    elif section == "model":
        owner = vitcore.ViTConfig
    else:
        raise ValueError(f"section={section!r}; expected one of {', '.join(SECTIONS)}")
    hints = typing.get_type_hints(owner)
    skip = RUN_FIELDS if section == "method" else ()
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(owner) if f.init and f.name not in skip}


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "None"
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any) -> tuple[bool, Any]:
    """``(matches, value as stored)`` for ``value`` against annotation ``tp``."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return True, value
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            ok, coerced = _coerce(value, arg)
            if ok:
                return True, coerced
        return False, value
    if tp is type(None):
        return value is None, value
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return ok, float(value) if ok else value
    if origin is tuple:
        if not isinstance(value, tuple | list):
            return False, value
        items = args[:1] * len(value) if len(args) == 2 and args[1] is Ellipsis else args
        if len(items) != len(value):
            return False, value
        pairs = [_coerce(v, t) for v, t in zip(value, items, strict=True)]
        return all(ok for ok, _ in pairs), tuple(v for _, v in pairs)
    if isinstance(tp, type):
        return isinstance(value, tp), value
    return True, value  # an annotation this checker does not model (e.g. a dtype alias): the class checks it


def parse_value(text: str) -> Any:
    """Command-line text as a Python value: a literal (``1e-3``, ``(1, 2)``, ``'a'``), ``none``/``null`` -> None,
    ``true``/``false`` -> bool, anything else the text itself."""
    lowered = text.strip().lower()
    if lowered in ("none", "null"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text


def _owner_name(section: str, method_cls: type) -> str:
    return {"method": method_cls.__name__, "optim": "OptimConfig", "model": "ViTConfig"}[section]


def check_fields(owner: type, values: Mapping[str, Any], *, where: str, skip: Sequence[str] = ()) -> dict[str, Any]:
    """``values`` checked against dataclass ``owner``'s init fields (less ``skip``) and coerced (int -> float
    for a float field, lists -> tuples). ValueError naming ``where.name`` for an unknown name (with the valid
    ones) or a value of the wrong type. Any config made of plain values can be typed this way."""
    hints = typing.get_type_hints(owner)
    fields = {f.name: hints.get(f.name, Any) for f in dataclasses.fields(owner) if f.init and f.name not in skip}
    return {name: _check_one(where, name, value, fields, owner.__name__) for name, value in values.items()}


def _check_one(section: str, name: str, value: Any, fields: Mapping[str, Any], owner: str, *,
               text: str | None = None) -> Any:
    where = f"{section}.{name}"
    if name not in fields:
        raise ValueError(f"{where}: not a field of {owner}; valid fields: {', '.join(sorted(fields))}")
    tp = fields[name]
    ok, coerced = _coerce(value, tp)
    if not ok and text is not None and _coerce(text, tp)[0]:
        return text  # a str field given something that also reads as a literal, e.g. method.decoder=1
    if not ok:
        shown = text if text is not None else value
        raise ValueError(f"{where}={shown!r}: expected {_type_name(tp)}")
    return coerced


def check_overrides(values: Mapping[str, Mapping[str, Any]], method_cls: type) -> Overrides:
    """Typed overrides from ``{"method": {...}, "optim": {...}, "model": {...}}`` of Python values (a sweep
    config); ValueError naming an unknown section or field (with the valid ones) or a value of the wrong type."""
    out: dict[str, dict[str, Any]] = {}
    for section, entries in values.items():
        if section not in SECTIONS:
            raise ValueError(f"{section!r}: not an override section; expected one of {', '.join(SECTIONS)}")
        fields = field_types(section, method_cls)
        owner = _owner_name(section, method_cls)
        out[section] = {name: _check_one(section, name, value, fields, owner) for name, value in entries.items()}
    return Overrides(**out)


def parse_overrides(items: Sequence[str], method_cls: type) -> Overrides:
    """Typed overrides from ``section.field=value`` strings (command line); errors as `check_overrides`.

    A field given twice is an error (the later one would silently win otherwise)."""
    out: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    for item in items:
        key, sep, text = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or not name:
            raise ValueError(f"{item!r}: expected section.field=value with section one of {', '.join(SECTIONS)}, "
                             "e.g. optim.lr=1e-3")
        if section not in SECTIONS:
            raise ValueError(f"{item!r}: unknown section {section!r}; expected one of {', '.join(SECTIONS)}")
        if name in out[section]:
            raise ValueError(f"{section}.{name} is given twice; give each field once")
        fields = field_types(section, method_cls)
        out[section][name] = _check_one(section, name, parse_value(text), fields, _owner_name(section, method_cls),
                                        text=text)
    return Overrides(**out)
