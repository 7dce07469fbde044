"""One tiny detector per test session (eager initialisation compiles a small program per parameter shape)."""

import jax.random as jr
import pytest
from segtransfer.detection import detector_config, detector_from_scratch


@pytest.fixture(scope="session")
def tiny_detector():
    """vit-test encoder (patch 8, width 32, depth 2) at 64x64 + the "tiny" heads, 3 classes."""
    return detector_from_scratch("vit-test", detector_config("tiny", num_classes=3), key=jr.key(0))
