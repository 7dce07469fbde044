"""train_step_cost: the measured fine-tuning step against a closed-form matmul count of the segmenter."""

import flopmeter
import jax
import jax.numpy as jnp
import jax.random as jr
import pytest
from segtransfer import (
    finetune_optimizer,
    predict_logits,
    segmenter_from_scratch,
    segmenter_weight_decay_mask,
    train_step_cost,
    warmup_poly_schedule,
)


def test_train_step_flops_against_closed_form():
    c, k, b = 8, 3, 4
    model = segmenter_from_scratch("vit-test", k, key=jr.key(0), head_kwargs={"head_channels": c, "norm_groups": 4})
    opt = finetune_optimizer(warmup_poly_schedule(1e-4, 10, 1), 0.05, decay_mask=segmenter_weight_decay_mask(model))
    # vit-test at 32x32: width 32, 2 blocks, patch 8 -> 16 patches + class token
    d, n, g, layers = 32, 17, 16, 2
    macs = g * (8 * 8 * 3) * d  # patch embedding
    macs += layers * (n * 12 * d * d + 2 * n * n * d)  # qkv + proj + MLP(4d) + QK^T and AV
    macs += g * 9 * d * c + g * 9 * c * c + g * c * k  # two 3x3 convs and the 1x1 classifier on the 4x4 grid
    forward = flopmeter.measure(predict_logits, model, jax.ShapeDtypeStruct((b, 32, 32, 3), jnp.float32)).flops / b
    # matmuls dominate; norms, softmax, GELU and the bilinear upsampling add the rest (measured: +28%)
    assert 2 * macs <= forward <= 1.4 * 2 * macs
    step = train_step_cost(model, opt, batch_size=b, image_size=32).flops
    # backward ~ 2x forward; a step that lost its backward pass (returning only the loss) would be ~1x
    assert 2.5 * b * forward <= step <= 3.5 * b * forward
    with pytest.raises(ValueError, match="batch_size=0"):
        train_step_cost(model, opt, batch_size=0, image_size=32)
