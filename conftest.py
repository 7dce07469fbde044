"""Test-wide settings for every package in the monorepo.

Set before JAX is imported anywhere: four fake CPU devices (so sharding code is tested on this machine), float32
default, and strict dtype promotion (an accidental float64 or int->float mix is an error, as in Equinox's tests).
jaxtyping + beartype checking of our packages is switched on in pyproject.toml (`--jaxtyping-packages`).
"""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# The tools turn JAX's persistent compilation cache on; in tests it stays off (a cache hit skips compiles some
# tests count, and tests write nothing outside their tmp_path) unless a test sets its own directory.
os.environ.setdefault("FLOPWISE_JAX_CACHE", "off")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_dtype_promotion", "strict")


@pytest.fixture
def without_jaxtyping():
    """Turns the test hook's jaxtyping + beartype checks off, so a call reaches the library's own input checks
    (what a user who does not run jaxtyping sees); for tests that assert the library's own error message."""
    import jaxtyping

    before = jaxtyping.config.jaxtyping_disable
    jaxtyping.config.update("jaxtyping_disable", True)
    yield
    jaxtyping.config.update("jaxtyping_disable", before)
