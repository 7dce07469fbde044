"""Sweep config files in big_vision's form, and ``--config.a.b=value`` overrides of them.

A config file is a Python module with ``get_config(arg=None) -> ml_collections.ConfigDict``; ``path.py:arg``
passes ``arg`` (e.g. ``configs/paper.py:jft``). Overrides name a field by its dotted path under ``config``::

    cfg = load_config_file("configs/demo.py")
    apply_overrides(cfg, ["--config.budgets=(100,200)", "--config.tasks.segmentation.steps=50"])

Values are Python literals (``parse_value``: ``(1, 2)``, ``1e-3``, ``None``, ``true``) or plain text. An unknown
field is a ValueError naming it and the fields valid at that level; a value of another type than the field's is
one too (an int is accepted where a float is, a list where a tuple is). Nothing is run or built here.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import flopcli
import ml_collections
from sslmethods.pretrain.overrides import parse_value

__all__ = ["apply_overrides", "load_config_file", "split_override_args"]


# Settings that were renamed, with what to write instead (an old config gets this, not "not a sweep setting").
RENAMED = {
    "extra_seeds": "renamed config.confirm_seeds, and it now counts only the confirm seeds, numbered after the "
                   "explore seeds (the old extra_seeds=N reran seeds 0..N-1, the choosing seed included): "
                   "extra_seeds=N is about confirm_seeds=N-1, and 1 is confirm_seeds=0",
    "extra_seeds_by": "renamed config.confirm_by (the groups whose best point gets confirm seeds)",
}


def load_config_file(spec: str) -> Any:
    """``get_config(arg)`` of the file ``path.py`` or ``path.py:arg``; ValueError naming the file otherwise (a
    `flopcli.UserCodeError` when the file or its ``get_config`` raises)."""
    path_text, arg = spec.rsplit(":", 1) if ":" in spec and not Path(spec).exists() else (spec, "")
    path = Path(path_text)
    if not path.is_file():
        raise ValueError(f"--config {spec!r}: no such file {str(path)!r}")
    module_name = f"_flopstudy_config_{abs(hash(str(path.resolve())))}"
    loader_spec = importlib.util.spec_from_file_location(module_name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise ValueError(f"--config {spec!r}: not a Python file")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[module_name] = module  # dataclasses and pickling in the config module look themselves up here
    # The file is the user's code: whatever it raises (a SyntaxError, an ImportError, a KeyError in get_config)
    # is one error naming the file (flopcli.UserCodeError; --debug shows the traceback).
    try:
        with flopcli.user_code(f"--config {spec}: loading {str(path)!r}"):
            loader_spec.loader.exec_module(module)
    except flopcli.UserCodeError:
        sys.modules.pop(module_name, None)
        raise
    get_config = getattr(module, "get_config", None)
    if not callable(get_config):
        raise ValueError(f"--config {spec!r}: {str(path)!r} defines no get_config(arg)")
    with flopcli.user_code(f"--config {spec}: get_config({arg!r}) of {str(path)!r}" if arg
                           else f"--config {spec}: get_config() of {str(path)!r}"):
        config = get_config(arg) if arg else get_config()
    if not isinstance(config, ml_collections.ConfigDict):
        raise ValueError(f"--config {spec!r}: get_config returned {type(config).__name__}; expected a ConfigDict")
    return config


def split_override_args(args: Sequence[str]) -> list[tuple[str, str]]:
    """``["--config.a=1", "--config.b", "2"]`` -> ``[("a", "1"), ("b", "2")]``; ValueError for anything else."""
    pairs, i = [], 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--config."):
            raise ValueError(f"unrecognised argument {arg!r}; overrides look like --config.budgets=(100,200)")
        key, sep, value = arg.removeprefix("--config.").partition("=")
        if not sep:
            if i + 1 >= len(args):
                raise ValueError(f"{arg}: expected a value (--config.{key}=VALUE)")
            value, i = args[i + 1], i + 1
        pairs.append((key, value))
        i += 1
    return pairs


def _compatible(old: Any, new: Any) -> tuple[bool, Any]:
    if old is None or new is None:
        return True, new
    if isinstance(old, ml_collections.ConfigDict):
        return isinstance(new, dict), new  # a whole group, e.g. --config.build_datasets="{'x': {...}}"
    if isinstance(old, bool) or isinstance(new, bool):
        return isinstance(old, bool) and isinstance(new, bool), new
    if isinstance(old, float) and isinstance(new, int):
        return True, float(new)
    if isinstance(old, tuple | list) and isinstance(new, tuple | list):
        return True, tuple(new)
    if isinstance(old, tuple | list) and not isinstance(new, str | dict):
        return True, (new,)  # --config.budgets=300 means (300,)
    return isinstance(new, type(old)), new


def apply_overrides(config: Any, args: Sequence[str]) -> Any:
    """``config`` (a ConfigDict, changed in place and returned) with the ``--config.path=value`` ``args``."""
    for key, text in split_override_args(args):
        node, parts = config, key.split(".")
        for depth, part in enumerate(parts):
            where = "config." + ".".join(parts[: depth + 1])
            if not isinstance(node, ml_collections.ConfigDict):
                raise ValueError(f"--{where}: {'config.' + '.'.join(parts[:depth])} is a value, not a group")
            if part not in node and depth == 0 and part in RENAMED:
                raise ValueError(f"--{where}: {RENAMED[part]}")
            if part not in node:
                raise ValueError(f"--{where}: no such field; valid fields: {', '.join(sorted(node.keys()))}")
            if depth < len(parts) - 1:
                node = node[part]
        value = parse_value(text)
        ok, value = _compatible(node[parts[-1]], value)
        if not ok and isinstance(node[parts[-1]], str):
            ok, value = True, text  # a text field given something that also reads as a literal
        if not ok:
            raise ValueError(f"--config.{key}={text!r}: expected {type(node[parts[-1]]).__name__} like the "
                             f"config's {node[parts[-1]]!r}")
        with node.ignore_type():
            node[parts[-1]] = value
    return config
