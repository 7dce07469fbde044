"""`from_timm` against outputs of timm itself (fixture made by tools/make_timm_fixture.py)."""

from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
import vitcore

FIXTURE = Path(__file__).parent / "fixtures" / "timm_vit_tiny.npz"


@pytest.fixture(scope="module")
def fixture():
    data = np.load(FIXTURE)
    state = {k.removeprefix("param/"): data[k] for k in data.files if k.startswith("param/")}
    return state, data["images"], data["logits"], data["tokens"]


def _rel(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - b)) / np.max(np.abs(b)))


@pytest.mark.parametrize("scan_layers", [False, True])
def test_from_timm_reproduces_timm_logits(fixture, scan_layers):
    state, images, logits, tokens = fixture
    assert state["patch_embed.proj.weight"].shape == (32, 3, 8, 8)  # OIHW, as timm stores it
    model = vitcore.from_timm("vit-test", state, scan_layers=scan_layers)
    assert model.config.num_classes == 10
    out = model(jnp.asarray(images))
    assert _rel(out.logits, logits) < 1e-4
    assert _rel(out.tokens, tokens) < 1e-4


def test_from_timm_shape_mismatch_names_the_key(fixture):
    state = dict(fixture[0])
    state["blocks.1.mlp.fc1.weight"] = state["blocks.1.mlp.fc1.weight"][:64]
    with pytest.raises(ValueError, match=r"blocks\.1\.mlp\.fc1\.weight.*\(64, 32\).*\(128, 32\)"):
        vitcore.from_timm("vit-test", state)


def test_from_timm_missing_and_unused_keys(fixture):
    state = dict(fixture[0])
    del state["norm.bias"]
    with pytest.raises(KeyError, match="norm.bias"):
        vitcore.from_timm("vit-test", state)
    state = dict(fixture[0])
    with pytest.raises(ValueError, match="blocks.2"):  # a 3-block checkpoint loaded as a 2-block preset
        vitcore.from_timm("vit-test", {**state, "blocks.2.norm1.weight": np.ones(32, np.float32)})
    with pytest.raises(ValueError, match="pos_embed"):  # the wrong preset: grid 4x4 vs 2x2
        vitcore.from_timm("vit-test", state, image_size=16)


def test_from_timm_refuses_a_non_vit_preset():
    with pytest.raises(ValueError, match="preset='nfnet-test' has a NFNetConfig, not a ViTConfig; from_timm loads"):
        vitcore.from_timm("nfnet-test", {})
