"""The persistent compilation cache: where it lives ($FLOPWISE_JAX_CACHE > the caller's path > the user cache), off
with FLOPWISE_JAX_CACHE=off, and a program compiled again after the in-memory caches are dropped is read from it."""

import jax
import jax.monitoring
import jax.numpy as jnp
import pytest
from runloop import CACHE_ENV, compilation_cache_dir, enable_compilation_cache


@pytest.fixture
def restore_cache_config():
    before = (jax.config.jax_compilation_cache_dir, jax.config.jax_enable_compilation_cache,
              jax.config.jax_persistent_cache_min_compile_time_secs)
    yield
    jax.config.update("jax_compilation_cache_dir", before[0])
    jax.config.update("jax_enable_compilation_cache", before[1])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", before[2])
    from jax.experimental.compilation_cache import compilation_cache

    compilation_cache.reset_cache()


def test_location_precedence(tmp_path, monkeypatch):
    monkeypatch.delenv(CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert compilation_cache_dir() == tmp_path / "xdg" / "flopwise" / "jax"
    assert compilation_cache_dir(tmp_path / "sweep") == tmp_path / "sweep"
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "env"))
    assert compilation_cache_dir(tmp_path / "sweep") == tmp_path / "env"
    monkeypatch.setenv(CACHE_ENV, "off")
    assert compilation_cache_dir(tmp_path / "sweep") is None


def test_off_turns_the_cache_off(monkeypatch, restore_cache_config):
    monkeypatch.setenv(CACHE_ENV, "off")
    assert enable_compilation_cache() is None and not jax.config.jax_enable_compilation_cache
    with pytest.raises(ValueError, match=r"min_compile_seconds=-1.0; expected a number of seconds >= 0"):
        enable_compilation_cache(min_compile_seconds=-1.0)


def test_second_compile_is_read_from_the_cache(tmp_path, monkeypatch, restore_cache_config):
    monkeypatch.delenv(CACHE_ENV, raising=False)
    jnp.zeros(3).block_until_ready()  # JAX has compiled before the call: the setting must still take effect
    directory = enable_compilation_cache(tmp_path / "cache", min_compile_seconds=0.0)
    assert directory == tmp_path / "cache" and jax.config.jax_compilation_cache_dir == str(directory)
    events = []
    jax.monitoring.register_event_listener(lambda name, **kw: events.append(name))

    def f(x):
        return jnp.tanh(x) @ x.T + 17.0

    x = jnp.ones((8, 8))
    jax.jit(f).lower(x).compile()
    assert any(directory.iterdir())  # the executable was written
    jax.clear_caches()
    jax.jit(f).lower(x).compile()
    assert "/jax/compilation_cache/cache_hits" in events
