"""Schedule closed form, layer-wise LR decay (ViTDet's rule), weight-decay mask, the study recipe."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax
import pytest
from segtransfer.detection import (
    DETECTION_RECIPES,
    STUDY_RECIPE,
    VITDET_RECIPE,
    DetectionRecipe,
    detection_optimizer,
    detector_config,
    detector_from_scratch,
    detector_weight_decay_mask,
    layer_decay_scales,
    warmup_step_schedule,
)


@pytest.fixture()
def model(tiny_detector):
    return tiny_detector


def test_schedule_closed_form():
    s = warmup_step_schedule(1e-4, warmup_steps=250, warmup_factor=0.001, milestones=(19556, 21185))
    for t in (0, 1, 100, 249, 250, 5000, 19555, 19556, 21184, 21185, 22000):
        warm = 0.001 + 0.999 * t / 250 if t < 250 else 1.0
        decay = 0.1 ** ((t >= 19556) + (t >= 21185))
        assert float(s(t)) == pytest.approx(1e-4 * warm * decay, rel=1e-5)
    assert STUDY_RECIPE.milestones == (19556, 21185) and STUDY_RECIPE.steps == 22000
    assert STUDY_RECIPE.batch_size == 64 and STUDY_RECIPE.image_size == 1024
    # ViTDet's own 100-epoch recipe: its config's max_iter 184375 and milestones [163889, 177546].
    assert VITDET_RECIPE.steps == 184_375 and VITDET_RECIPE.milestones == (163_889, 177_546)
    assert DETECTION_RECIPES == {"study": STUDY_RECIPE, "vitdet": VITDET_RECIPE}
    assert (VITDET_RECIPE.peak_lr, VITDET_RECIPE.weight_decay, VITDET_RECIPE.layer_decay) == (1e-4, 0.1, 0.7)
    with pytest.raises(ValueError, match=r"warmup_steps=30; expected in \[0, steps=20\)"):
        DetectionRecipe(steps=20, warmup_steps=30)


def test_layer_decay_follows_vitdet(model):
    scales = layer_decay_scales(model, 0.5)
    depth = model.encoder.config.depth  # 2: embeddings layer 0, blocks 1..2, the rest 3
    assert scales.encoder.patch_embed.weight == 0.5 ** (depth + 1)
    assert scales.encoder.pos_embed == 0.5 ** (depth + 1) and scales.encoder.cls_token == 0.5 ** (depth + 1)
    blocks = scales.encoder.blocks.layers
    assert [jax.tree.leaves(b)[0] for b in blocks] == [0.5**2, 0.5**1]
    assert set(jax.tree.leaves(scales.encoder.blocks.layers[1])) == {0.5}
    assert scales.encoder.norm.scale == 1.0 and set(jax.tree.leaves(scales.box_head)) == {1.0}
    scanned = detector_from_scratch("vit-test", detector_config("tiny", num_classes=3), key=jr.key(0),
                                    scan_layers=True)
    stacked = layer_decay_scales(scanned, 0.5).encoder.blocks.layers
    np.testing.assert_allclose(np.asarray(jax.tree.leaves(stacked)[0]).reshape(-1), [0.25, 0.5])


def test_weight_decay_mask(model):
    mask = detector_weight_decay_mask(model)
    assert mask.encoder.patch_embed.weight and not mask.encoder.pos_embed and not mask.encoder.norm.scale
    assert mask.box_head.fc.weight and not mask.box_head.fc.bias and not mask.box_head.norms[0].scale
    assert mask.pyramid.stages[0].up[0].weight and not mask.pyramid.stages[0].lateral_norm.bias


def test_optimizer_is_adamw_with_layer_scales(model):
    recipe = DetectionRecipe(steps=100, warmup_steps=0, peak_lr=0.1, weight_decay=0.5, layer_decay=0.5)
    opt = detection_optimizer(model, recipe)
    params = eqx.filter(model, eqx.is_array)
    grads = jax.tree.map(jnp.ones_like, params)
    updates, _ = eqx.filter_jit(lambda g, p: opt.update(g, opt.init(p), p))(grads, params)
    # first Adam step: direction = g / (|g| + eps) ~ 1; AdamW: -lr * scale * (1 + wd * p if decayed)
    p, u = params.encoder.patch_embed.weight, updates.encoder.patch_embed.weight
    np.testing.assert_allclose(u, -0.1 * 0.5**3 * (1.0 + 0.5 * p), rtol=1e-5)
    np.testing.assert_allclose(updates.box_head.fc.bias, -0.1 * np.ones_like(params.box_head.fc.bias), rtol=1e-5)
    assert isinstance(opt, optax.GradientTransformation)


def test_abstract_train_state_matches_a_real_one(tiny_detector):
    from segtransfer.detection import abstract_detection_state, init_detection_state

    config = tiny_detector.config
    recipe = DetectionRecipe(steps=10, warmup_steps=1)
    abstract, optimizer = abstract_detection_state(
        lambda k: detector_from_scratch("vit-test", config, key=k), lambda m: detection_optimizer(m, recipe),
        key=jr.key(0),
    )
    real = init_detection_state(tiny_detector, optimizer, key=jr.key(0))
    shapes = jax.tree.map(lambda x: (x.shape, x.dtype), abstract)
    assert shapes == jax.tree.map(lambda x: (x.shape, x.dtype), real)
    assert all(isinstance(x, jax.ShapeDtypeStruct) for x in jax.tree.leaves(abstract))
