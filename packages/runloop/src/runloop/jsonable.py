"""The one strict JSON converter every run file goes through.

Numbers (Python, numpy and JAX scalars) become int/float, arrays become (nested) lists, non-finite floats become
null (JSON has no NaN), dicts/lists/tuples recurse. Anything else (a Path, a dataclass, an object) raises
TypeError naming where it sits: a record must say what it stores, never ``str(obj)`` by accident.

Example::

    to_jsonable({"loss": np.float32(0.5), "iou": np.array([0.1, np.nan])})   # {"loss": 0.5, "iou": [0.1, None]}
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["to_jsonable"]


def _number(array: np.ndarray, where: str) -> Any:
    kind = array.dtype.kind
    if kind == "b":
        return bool(array)
    if kind in "iu":
        return int(array)
    if kind == "f":
        value = float(array)
        return value if math.isfinite(value) else None
    raise TypeError(f"{where} is a {array.dtype} value; expected a bool, integer or float number")


def to_jsonable(value: Any, where: str = "value") -> Any:
    """``value`` as JSON types (see the module docstring); ``where`` names it in errors (e.g. ``"summary"``)."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str | int) or isinstance(key, bool):
                raise TypeError(f"{where} has the key {key!r} ({type(key).__name__}); JSON keys are strings")
            out[str(key)] = to_jsonable(item, f"{where}[{key!r}]")
        return out
    if isinstance(value, list | tuple):
        return [to_jsonable(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, np.generic) or _is_array(value):
        array = np.asarray(value)
        if array.ndim == 0:
            return _number(array, where)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"{where} is an array of {array.dtype}; expected numbers")
        return [to_jsonable(item, f"{where}[{i}]") for i, item in enumerate(array)]
    raise TypeError(
        f"{where}={value!r} is a {type(value).__name__}; expected JSON data (numbers, strings, None, lists, dicts, "
        "numpy/JAX numbers or arrays). Convert it explicitly (e.g. str(path), dataclasses.asdict(config))"
    )


def _is_array(value: Any) -> bool:
    # numpy arrays and jax.Array (without importing jax here: anything exposing the array protocol and a dtype).
    return hasattr(value, "__array__") and hasattr(value, "dtype") and hasattr(value, "shape")
