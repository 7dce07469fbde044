"""`python -m flopmeter module:function --arg-shapes f32[8,224,224,3] ... [--json]`: measure any function.

Also `flopwise-measure` / `flopwise measure`. The function is compiled on abstract arguments of those shapes and
dtypes (never run); prints its `Cost` as a table or one JSON object. Bad input: one line "error: ..." and exit
status 2 (the `flopcli` convention).
"""

import argparse
import importlib
import re
import sys
from collections.abc import Sequence

import flopcli
import jax
import jax.numpy as jnp

from flopmeter.measure import measure

_DTYPES = {
    "f32": "float32",
    "f16": "float16",
    "bf16": "bfloat16",
    "f64": "float64",
    "i32": "int32",
    "i64": "int64",
    "i8": "int8",
    "u8": "uint8",
    "s32": "int32",
    "bool": "bool",
    "pred": "bool",
}
_SPEC = re.compile(r"^([a-z0-9]+)\[([0-9,\s]*)\]$")


def parse_shape(spec: str) -> jax.ShapeDtypeStruct:
    """`"f32[8,224,224,3]"` or `"bfloat16[4,16]"` -> ShapeDtypeStruct; `"f32[]"` is a scalar."""
    match = _SPEC.match(spec.strip())
    if match is None:
        raise ValueError(f"arg shape {spec!r} is invalid; expected dtype[d0,d1,...] such as f32[8,224,224,3]")
    dtype = _DTYPES.get(match.group(1), match.group(1))
    try:
        dtype = jnp.dtype(dtype)
    except TypeError as error:
        raise ValueError(
            f"arg shape {spec!r} has unknown dtype {match.group(1)!r}; expected one of "
            f"{sorted(_DTYPES)} or a numpy dtype name"
        ) from error
    dims = tuple(int(d) for d in match.group(2).split(",") if d.strip())
    return jax.ShapeDtypeStruct(dims, dtype)


def load_function(target: str):
    """Import `package.module:function` (attribute paths such as `mod:Class.method` allowed)."""
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"target {target!r} is invalid; expected module:function, e.g. mypkg.model:forward")
    try:
        obj = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"target {target!r}: cannot import module {module_name!r} ({error}); is it on "
                         "PYTHONPATH?") from error
    for part in attribute.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"target {target!r}: {getattr(obj, '__name__', obj)!r} has no attribute {part!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"target {target!r} resolved to a non-callable {type(obj).__name__}")
    return obj


def build_parser() -> flopcli.ArgumentParser:
    parser = flopcli.ArgumentParser(prog="python -m flopmeter", description=__doc__)
    parser.add_argument("target", help="module:function to measure")
    parser.add_argument(
        "--arg-shapes",
        nargs="*",
        default=[],
        metavar="DTYPE[DIMS]",
        help="one abstract positional argument each, e.g. f32[8,224,224,3]",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    return parser


def body(options: argparse.Namespace) -> int:
    shapes = []
    for spec in options.arg_shapes:
        with flopcli.about("--arg-shapes"):
            shapes.append(parse_shape(spec))
    fn = load_function(options.target)
    cost = measure(fn, *shapes)
    print(cost.to_json() if options.json else cost.table())
    return flopcli.EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return flopcli.run(build_parser(), body, argv)


if __name__ == "__main__":
    sys.exit(main())
