"""Closed-form MAC counts: published numbers, hand re-derivations, and XLA measurements of a plain-JAX ViT."""

import flopmeter
import jax
import jax.numpy as jnp
import pytest

VIT_B16 = dict(image_size=224, patch_size=16, width=768, depth=12)


def test_vit_b16_forward_is_17_56_gmacs():
    # Published figure (e.g. MAE/DeiT tables, fvcore): 17.56 GMACs for ViT-B/16 at 224 without the head.
    assert flopmeter.vit_forward_macs(**VIT_B16) / 1e9 == pytest.approx(17.56, abs=0.005)


def test_formulas_match_a_hand_derivation():
    n, d, L = 197, 768, 12
    per_block = n * d * 3 * d + n * n * d * 2 + n * d * d + 2 * n * d * 4 * d
    embed = 196 * 16 * 16 * 3 * d
    assert flopmeter.vit_forward_macs(**VIT_B16, num_classes=1000) == embed + L * per_block + d * 1000
    assert flopmeter.vit_train_macs(**VIT_B16) == 3 * (embed + L * per_block) - embed
    assert flopmeter.macs_to_flops(10) == 20.0


def test_mae_split():
    # ViT-B/16 encoder at 75% masking sees 49 patches + cls; decoder 8 x 512 over 197 tokens.
    out = flopmeter.mae_forward_macs(**VIT_B16, mask_ratio=0.75)
    enc_tokens, dec_tokens = 50, 197
    encoder = 196 * 768 * 768 + 12 * (12 * enc_tokens * 768**2 + 2 * enc_tokens**2 * 768)
    decoder = 50 * 768 * 512 + 8 * (12 * dec_tokens * 512**2 + 2 * dec_tokens**2 * 512) + 197 * 512 * 768
    assert out == {"encoder": encoder, "decoder": decoder, "total": encoder + decoder}
    assert flopmeter.mae_kept_patches(patches=196, mask_ratio=0.75) == 49
    with pytest.raises(ValueError, match="mask_ratio"):
        flopmeter.mae_forward_macs(**VIT_B16, mask_ratio=1.0)


def test_text_encoder():
    L, d, depth = 16, 256, 4
    expected = depth * (12 * L * d * d + 2 * L * L * d) + d * 768
    assert flopmeter.text_encoder_macs(seq_len=L, width=d, depth=depth, output_dim=768) == expected


def test_bad_dimensions_raise():
    with pytest.raises(ValueError, match="image_size"):
        flopmeter.vit_forward_macs(image_size=225, patch_size=16, width=8, depth=1)
    with pytest.raises(ValueError, match="width"):
        flopmeter.transformer_block_macs(tokens=4, width=0)


@pytest.mark.slow
def test_measured_plain_jax_vit_b16_forward_agrees_with_analytic(plain_vit):
    params = plain_vit.make_params(image_size=224, patch_size=16, width=768, depth=12)
    images = jax.ShapeDtypeStruct((1, 224, 224, 3), jnp.float32)
    cost = flopmeter.measure(plain_vit.forward, params, images, num_heads=12, patch_size=16, scan=True)
    analytic = flopmeter.vit_forward_macs(**VIT_B16)
    # XLA also counts norms, softmax, GELU and adds, so measured sits slightly above the matmul-only count.
    assert analytic <= cost.macs <= 1.03 * analytic


def test_measured_small_train_step_is_about_three_forwards(plain_vit):
    dims = dict(image_size=32, patch_size=8, width=128, depth=2)
    params = plain_vit.make_params(**dims, abstract=True)
    images = jax.ShapeDtypeStruct((2, 32, 32, 3), jnp.float32)

    def loss(p, x):
        return jnp.mean(jnp.square(plain_vit.forward(p, x, num_heads=4, patch_size=8, scan=True)))

    def step(p, x):  # returns the new parameters, so XLA cannot drop the backward pass
        grads = jax.grad(loss)(p, x)
        return jax.tree_util.tree_map(lambda a, g: a - 0.1 * g, p, grads)

    forward = flopmeter.measure(loss, params, images)
    train = flopmeter.measure(step, params, images)
    batch = 2
    analytic_fwd = batch * flopmeter.vit_forward_macs(**dims)
    analytic_train = batch * flopmeter.vit_train_macs(**dims)
    # At width 128 norms/softmax/GELU are a visible share of the work, so allow 15% above matmuls only.
    assert analytic_fwd <= forward.macs <= 1.15 * analytic_fwd
    assert train.macs / forward.macs == pytest.approx(analytic_train / analytic_fwd, rel=0.15)
    assert 2.5 < train.flops / forward.flops < 3.5


# NFNet paper (Brock et al. 2021), Table 3: FLOPs (multiply-adds) at each model's test resolution.
NFNET_PUBLISHED = {(1, 2, 6, 3): (256, 12.38), (2, 4, 12, 6): (320, 35.54), (3, 6, 18, 9): (352, 62.59),
                   (4, 8, 24, 12): (416, 114.76)}


@pytest.mark.parametrize("depths", sorted(NFNET_PUBLISHED))
def test_nfnet_forward_matches_the_published_flops(depths):
    size, gmacs = NFNET_PUBLISHED[depths]
    macs = flopmeter.nfnet_forward_macs(image_size=size, widths=(256, 512, 1536, 1536), depths=depths,
                                        num_classes=1000)
    assert macs / 1e9 == pytest.approx(gmacs, abs=0.005)


def test_nfnet_formula_matches_a_hand_derivation():
    # One block per stage, widths (32, 64, 128, 128), group 16, 32 px: re-derived conv by conv.
    kw = dict(image_size=32, widths=(32, 64, 128, 128), depths=(1, 1, 1, 1), stem_widths=(8, 8, 8), group_size=16)
    stem = 16 * 16 * 9 * 3 * 8 + 2 * (16 * 16 * 9 * 8 * 8) + 8 * 8 * 9 * 8 * 16
    blocks, cin, side = 0, 16, 8
    for i, out in enumerate((32, 64, 128, 128)):
        mid, s_in = out // 2, side
        side = side // 2 if i else side
        blocks += s_in**2 * cin * mid + 2 * side**2 * 9 * 16 * mid + side**2 * mid * out
        blocks += side**2 * cin * out if (i or cin != out) else 0
        blocks += 2 * out * (out // 2)
        cin = out
    final = side**2 * 128 * 256
    assert flopmeter.nfnet_forward_macs(**kw) == stem + blocks + final
    assert flopmeter.nfnet_train_macs(**kw) == 3 * (stem + blocks + final) - 16 * 16 * 9 * 3 * 8
    with pytest.raises(ValueError, match="groups=3 does not divide"):
        flopmeter.conv2d_macs(out_height=1, out_width=1, kernel=1, in_channels=4, out_channels=6, groups=3)
