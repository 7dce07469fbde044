"""`from_timm` against outputs of timm itself (fixture made by tools/make_timm_fixture.py)."""

from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
import timm
import timm.data as timm_data
import torch
import vitcore
from PIL import Image

FIXTURE = Path(__file__).parent / "fixtures" / "timm_vit_tiny.npz"


@pytest.fixture(scope="module")
def fixture():
    data = np.load(FIXTURE)
    state = {k.removeprefix("param/"): data[k] for k in data.files if k.startswith("param/")}
    return state, data["images"], data["logits"], data["tokens"], data["mean"], data["std"]


def _rel(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - b)) / np.max(np.abs(b)))


@pytest.mark.parametrize("scan_layers", [False, True])
def test_from_timm_reproduces_timm_logits(fixture, scan_layers):
    """Our model on [0, 1] pixels equals timm's model on timm's own preprocessing (create_transform) of them."""
    state, images, logits, tokens, mean, std = fixture
    assert state["patch_embed.proj.weight"].shape == (32, 3, 8, 8)  # OIHW, as timm stores it
    assert images.min() >= 0 and images.max() <= 1
    model = vitcore.from_timm("vit-test", state, mean=tuple(mean), std=tuple(std), scan_layers=scan_layers)
    assert model.config.num_classes == 10
    assert (model.config.mean, model.config.std) == (tuple(mean.tolist()), tuple(std.tolist()))
    out = model(jnp.asarray(images))
    assert _rel(out.logits, logits) < 1e-4
    assert _rel(out.tokens, tokens) < 1e-4


def test_from_timm_defaults_to_imagenet_normalisation_and_honours_another(fixture):
    state, images, logits, *_ = fixture
    assert vitcore.from_timm("vit-test", state).config.mean == (0.485, 0.456, 0.406)
    # A checkpoint trained on (x - 0.5) / 0.5 (timm's augreg ViTs): fed pixels whose (x - 0.5) / 0.5 equals
    # ImageNet's normalisation of the fixture's pixels, it must give timm's logits.
    imagenet = (images.astype(np.float64) - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    half = vitcore.from_timm("vit-test", state, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    out = half(jnp.asarray(imagenet * 0.5 + 0.5, jnp.float32))
    assert _rel(out.logits, logits) < 1e-4
    with pytest.raises(ValueError, match=r"ViTConfig\.std=\(0\.5, 0\.0, 0\.5\); expected every value > 0"):
        vitcore.from_timm("vit-test", state, std=(0.5, 0.0, 0.5))


def test_from_timm_matches_timm_preprocessing_live():
    """Against timm itself: an augreg-style model whose pretrained_cfg normalises with
    0.5 / 0.5, its mean/std read from timm's resolve_data_config, the image through timm's create_transform."""
    theirs = timm.create_model("vit_tiny_patch16_224.augreg_in21k", pretrained=False, img_size=32, patch_size=8,
                               embed_dim=32, depth=2, num_heads=2, num_classes=10).eval()
    cfg = timm_data.resolve_data_config({"input_size": (3, 32, 32), "crop_pct": 1.0}, model=theirs)
    assert cfg["mean"] == (0.5, 0.5, 0.5)
    state = {k: v.numpy() for k, v in theirs.state_dict().items()}
    ours = vitcore.from_timm("vit-test", state, mean=cfg["mean"], std=cfg["std"])
    pixels = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    transform = timm_data.create_transform(**cfg)
    with torch.no_grad():
        expected = theirs(torch.stack([transform(Image.fromarray(p)) for p in pixels])).numpy()
    assert _rel(ours(jnp.asarray(pixels / np.float32(255.0))).logits, expected) < 1e-4


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
