"""JAX's persistent compilation cache for runs: a second run of the same step loads its executable from disk.

``enable_compilation_cache()`` is what every tool that trains (pre-training, fine-tuning, sweeps, the demo)
calls first. Where the cache lives, in order:

1. ``$FLOPWISE_JAX_CACHE`` when set (``off`` turns the cache off), so one variable moves or disables it for
   every tool and worker;
2. the ``path`` the caller gives (a sweep keeps its own under ``OUT/.jax_cache``);
3. ``$XDG_CACHE_HOME/flopwise/jax``, else ``~/.cache/flopwise/jax``.

Programs that compile in under ``min_compile_seconds`` are not written (JAX's own default threshold, 1 s, keeps
the cache to the steps and evaluations that matter). JAX reads the setting when a process first compiles; this
function also resets JAX's record of that decision, so it takes effect when called after earlier compilations.
The cache is trusted code: keep it in a directory only you can write.

`persistent_cache_hits()` counts the executables this process has read from the cache (JAX's monitoring event),
so a caller can tell whether a compilation was a compile or a read (`runloop.compile_step` does).
"""

from __future__ import annotations

import os
from pathlib import Path

import jax
import jax.monitoring
from jax.experimental.compilation_cache import compilation_cache

__all__ = ["CACHE_ENV", "compilation_cache_dir", "enable_compilation_cache", "persistent_cache_hits"]

CACHE_ENV = "FLOPWISE_JAX_CACHE"
OFF = "off"
_HIT_EVENT = "/jax/compilation_cache/cache_hits"
_hits = [0]


def _count_hit(event: str, **_: object) -> None:
    if event == _HIT_EVENT:
        _hits[0] += 1


jax.monitoring.register_event_listener(_count_hit)  # once, when runloop is first imported


def persistent_cache_hits() -> int:
    """How many executables this process has read from JAX's persistent compilation cache so far."""
    return _hits[0]


def compilation_cache_dir(path: str | os.PathLike[str] | None = None) -> Path | None:
    """The directory `enable_compilation_cache(path)` would use (module docstring), or None when
    ``$FLOPWISE_JAX_CACHE`` is ``off``."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return None if override.strip().lower() == OFF else Path(override).expanduser()
    if path is not None:
        return Path(path).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "flopwise" / "jax"


def enable_compilation_cache(path: str | os.PathLike[str] | None = None, *,
                             min_compile_seconds: float = 1.0) -> Path | None:
    """Turns JAX's persistent compilation cache on in `compilation_cache_dir(path)` (created if missing) and
    returns that directory; returns None and turns it off when ``$FLOPWISE_JAX_CACHE=off``."""
    if min_compile_seconds < 0:
        raise ValueError(f"min_compile_seconds={min_compile_seconds!r}; expected a number of seconds >= 0")
    directory = compilation_cache_dir(path)
    current = jax.config.jax_compilation_cache_dir
    if directory is None:
        jax.config.update("jax_enable_compilation_cache", False)
    else:
        directory.mkdir(parents=True, exist_ok=True)
        jax.config.update("jax_enable_compilation_cache", True)
        jax.config.update("jax_compilation_cache_dir", str(directory))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_seconds))
    if current != (None if directory is None else str(directory)):
        compilation_cache.reset_cache()  # JAX decides once per process whether to use the cache: decide again
    return directory
