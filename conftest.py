"""Test-wide settings for every package in the monorepo.

Set before JAX is imported anywhere: four fake CPU devices (so sharding code is tested on this machine), float32
default, and strict dtype promotion (an accidental float64 or int->float mix is an error, as in Equinox's tests).
jaxtyping + beartype checking of our packages is switched on in pyproject.toml (`--jaxtyping-packages`).
The fixtures `write_idx` and `uncompressed_rle` write the real on-disk formats several packages' tests fake.
"""

import gzip
import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# The tools turn JAX's persistent compilation cache on; in tests it stays off (a cache hit skips compiles some
# tests count, and tests write nothing outside their tmp_path) unless a test sets its own directory.
os.environ.setdefault("FLOPWISE_JAX_CACHE", "off")

import jax  # noqa: E402
import numpy as np  # noqa: E402
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


def _write_idx(path, array) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture(scope="session")
def write_idx():
    """``write_idx(path, array)``: a gzipped idx file of uint8 ``array`` (Fashion-MNIST's format)."""
    return _write_idx


def _uncompressed_rle(mask) -> dict:
    counts, current, run = [], 0, 0
    for value in mask.T.reshape(-1):
        if value == current:
            run += 1
        else:
            counts.append(run)
            current, run = value, 1
    counts.append(run)
    return {"size": list(mask.shape), "counts": counts}


@pytest.fixture(scope="session")
def uncompressed_rle():
    """``uncompressed_rle(mask)``: COCO's uncompressed RLE of a binary [h, w] mask (column-major run lengths,
    starting with a run of zeros), written independently of pycocotools."""
    return _uncompressed_rle


@pytest.fixture
def fresh_compilation_cache(tmp_path, monkeypatch):
    """JAX's persistent compilation cache on, empty, in ``tmp_path/jax_cache``, keeping every program (however
    fast it compiled); the cache settings are restored afterwards. Yields the directory."""
    from jax.experimental.compilation_cache import compilation_cache
    from runloop import CACHE_ENV, enable_compilation_cache

    before = (jax.config.jax_compilation_cache_dir, jax.config.jax_enable_compilation_cache,
              jax.config.jax_persistent_cache_min_compile_time_secs)
    monkeypatch.delenv(CACHE_ENV, raising=False)
    yield enable_compilation_cache(tmp_path / "jax_cache", min_compile_seconds=0.0)
    jax.config.update("jax_compilation_cache_dir", before[0])
    jax.config.update("jax_enable_compilation_cache", before[1])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", before[2])
    compilation_cache.reset_cache()
