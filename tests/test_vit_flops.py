"""Cross-package check: flopmeter measures vitcore's ViT-B/16 as the closed form predicts.

- forward at 224 (batch 1) agrees with the analytic 17.56 GMACs within 3%;
- a full training step (forward + backward + Adam update, returning new params and optimizer state) is near 3x
  the forward;
- the scanned 12-layer stack (`scan_layers=True`) measures within 1% of the unrolled one.
Everything is measured abstractly (`eqx.filter_eval_shape`), so no 86M-parameter model is ever allocated.
"""

import functools

import equinox as eqx
import flopmeter
import jax
import jax.numpy as jnp
import jax.random as jr
import optax
import pytest
import vitcore

VIT_B16 = dict(image_size=224, patch_size=16, width=768, depth=12)


def _abstract_model(**overrides):
    return eqx.filter_eval_shape(functools.partial(vitcore.create, "vit-b16", **overrides), key=jr.key(0))


def _forward(model, images):
    return model(images).tokens  # every token, so XLA cannot drop any of the last block's work


def _images(batch):
    return jax.ShapeDtypeStruct((batch, 224, 224, 3), jnp.float32)


@pytest.mark.slow
def test_vit_b16_forward_matches_analytic_17_56_gmacs():
    cost = flopmeter.measure(_forward, _abstract_model(), _images(1))
    analytic = flopmeter.vit_forward_macs(**VIT_B16)
    assert analytic / 1e9 == pytest.approx(17.56, abs=0.005)
    assert cost.macs == pytest.approx(analytic, rel=0.03)


@pytest.mark.slow
def test_vit_b16_train_step_is_about_three_forwards():
    optimizer = optax.adamw(1e-3, weight_decay=0.05)
    model = _abstract_model(num_classes=1000)
    opt_state = jax.eval_shape(
        lambda: optimizer.init(
            eqx.filter(vitcore.create("vit-b16", key=jr.key(0), num_classes=1000), eqx.is_array)
        )
    )

    def train_step(model, opt_state, images, labels):
        def loss_fn(m):
            logits = m(images, inference=True).logits
            return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

        loss, grads = eqx.filter_value_and_grad(loss_fn)(model)
        updates, opt_state = optimizer.update(grads, opt_state, eqx.filter(model, eqx.is_array))
        # Returning the new model and optimizer state keeps the backward pass alive (docs/design.md section 6, trap a).
        return eqx.apply_updates(model, updates), opt_state, loss

    labels = jax.ShapeDtypeStruct((2,), jnp.int32)
    # optax's Adam bias correction computes `decay ** count` (Python float ** int32), which the root
    # conftest's strict promotion rejects; the promotion mode does not change what is computed.
    with jax.numpy_dtype_promotion("standard"):
        step = flopmeter.measure(train_step, model, opt_state, _images(2), labels)
    forward = flopmeter.measure(lambda m, x: m(x).logits, model, _images(2))
    ratio = step.flops / forward.flops
    analytic_ratio = flopmeter.vit_train_macs(**VIT_B16, num_classes=1000) / flopmeter.vit_forward_macs(
        **VIT_B16, num_classes=1000
    )
    assert ratio == pytest.approx(analytic_ratio, rel=0.05)
    assert 2.8 < ratio < 3.2


@pytest.mark.slow
def test_scanned_layers_measure_like_unrolled_layers():
    unrolled = flopmeter.measure(_forward, _abstract_model(), _images(1))
    scanned = flopmeter.measure(_forward, _abstract_model(scan_layers=True), _images(1))
    assert scanned.loop_correction_flops > 0.5 * scanned.flops  # the loop really was scaled
    assert scanned.flops == pytest.approx(unrolled.flops, rel=0.01)
