"""The optimizer chain and its schedules against closed forms and a float64 numpy AdamW."""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from sslmethods.pretrain.optim import OptimConfig, learning_rate_schedule, make_optimizer, weight_decay_schedule


def test_learning_rate_closed_forms():
    cfg = OptimConfig(lr=1e-3, start_lr=1e-7, min_lr=2e-6, warmup_steps=100)
    lr = learning_rate_schedule(cfg, 1000)
    np.testing.assert_allclose(float(lr(0)), 1e-7, rtol=1e-5)
    np.testing.assert_allclose(float(lr(50)), 1e-7 + 0.5 * (1e-3 - 1e-7), rtol=1e-5)  # linear warmup
    np.testing.assert_allclose(float(lr(100)), 1e-3, rtol=1e-5)  # peak at the end of the warmup
    # Cosine over the remaining 900 steps: halfway (step 550) is the mean of peak and floor.
    np.testing.assert_allclose(float(lr(550)), (1e-3 + 2e-6) / 2, rtol=1e-5)
    t = 0.25
    np.testing.assert_allclose(float(lr(100 + 225)), 2e-6 + (1e-3 - 2e-6) * (1 + math.cos(math.pi * t)) / 2,
                               rtol=1e-5)
    np.testing.assert_allclose(float(lr(1000)), 2e-6, rtol=1e-5)  # fitted to the run: floor at the last step


def test_warmup_fraction_and_cap():
    cfg = OptimConfig(lr=3e-4, warmup_fraction=0.05)
    assert cfg.warmup_for(2000) == 100
    lr = learning_rate_schedule(cfg, 2000)
    np.testing.assert_allclose(float(lr(100)), 3e-4, rtol=1e-5)
    # A warmup longer than the run is capped at the run: the peak is reached at the last step.
    short = OptimConfig(lr=1e-3, warmup_steps=10_000)
    assert short.warmup_for(50) == 50
    np.testing.assert_allclose(float(learning_rate_schedule(short, 50)(50)), 1e-3, rtol=1e-5)


def test_dino_weight_decay_cosine():
    cfg = OptimConfig(weight_decay=0.04, weight_decay_end=0.4)
    wd = weight_decay_schedule(cfg, 1000)
    np.testing.assert_allclose(float(wd(0)), 0.04, rtol=1e-5)
    np.testing.assert_allclose(float(wd(500)), 0.22, rtol=1e-5)
    np.testing.assert_allclose(float(wd(1000)), 0.4, rtol=1e-5)
    np.testing.assert_allclose(float(wd(250)), 0.4 + (0.04 - 0.4) * (1 + math.cos(math.pi / 4)) / 2, rtol=1e-5)


def _numpy_adamw(params, grads_seq, cfg, total, mask):
    """Float64 AdamW (Loshchilov & Hutter) with global-norm clipping, written from the paper's algorithm."""
    p = {k: v.astype(np.float64) for k, v in params.items()}
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(x) for k, x in p.items()}
    warm = cfg.warmup_for(total)
    for t, g in enumerate(grads_seq):
        g = {k: x.astype(np.float64) for k, x in g.items()}
        norm = math.sqrt(sum(float(np.sum(x * x)) for x in g.values()))
        if cfg.clip_norm is not None and norm > cfg.clip_norm:
            g = {k: x * cfg.clip_norm / norm for k, x in g.items()}
        lr_t = cfg.start_lr + (cfg.lr - cfg.start_lr) * t / warm if t < warm else \
            cfg.min_lr + (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * (t - warm) / (total - warm))) / 2
        wd_t = cfg.weight_decay if cfg.weight_decay_end is None else \
            cfg.weight_decay_end + (cfg.weight_decay - cfg.weight_decay_end) * (1 + math.cos(math.pi * t / total)) / 2
        for k in p:
            m[k] = cfg.b1 * m[k] + (1 - cfg.b1) * g[k]
            v[k] = cfg.b2 * v[k] + (1 - cfg.b2) * g[k] ** 2
            m_hat = m[k] / (1 - cfg.b1 ** (t + 1))
            v_hat = v[k] / (1 - cfg.b2 ** (t + 1))
            update = m_hat / (np.sqrt(v_hat) + cfg.eps) + (wd_t * p[k] if mask[k] else 0.0)
            p[k] = p[k] - lr_t * update
    return p


@pytest.mark.parametrize("wd_end", [None, 0.4])
def test_adamw_matches_float64_reference(wd_end):
    rng = np.random.default_rng(0)
    params = {"w": rng.normal(size=(5, 3)).astype(np.float32), "b": rng.normal(size=(3,)).astype(np.float32)}
    mask = {"w": True, "b": False}
    grads = [{k: rng.normal(scale=2.0, size=x.shape).astype(np.float32) for k, x in params.items()}
             for _ in range(6)]
    cfg = OptimConfig(lr=0.05, start_lr=0.01, min_lr=0.001, b1=0.9, b2=0.95, weight_decay=0.3,
                      weight_decay_end=wd_end, clip_norm=1.5, warmup_steps=2)
    tx = make_optimizer(cfg, 6, wd_mask=mask)
    p = {k: jnp.asarray(x) for k, x in params.items()}
    state = tx.init(p)
    for g in grads:
        updates, state = tx.update({k: jnp.asarray(x) for k, x in g.items()}, state, p)
        p = optax.apply_updates(p, updates)
    ref = _numpy_adamw(params, grads, cfg, 6, mask)
    for k in p:
        np.testing.assert_allclose(np.asarray(p[k]), ref[k], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("clip_mode", ["global", "per_tensor"])
def test_clip_mode_picks_the_clip_before_adam(clip_mode):
    """Adam's second step depends on the first gradient's scale, so the clip shows: the chain equals a float64
    Adam fed gradients clipped the named way (global norm, or each tensor as DINO's utils.clip_gradients)."""
    cfg = OptimConfig(optimizer="adam", lr=0.1, start_lr=0.1, warmup_steps=10, b1=0.5, b2=0.5, clip_norm=1.0,
                      clip_mode=clip_mode)  # a constant learning rate over the 10 steps
    grads = [{"big": np.full((4,), 10.0), "small": np.full((3,), 0.1)},
             {"big": np.full((4,), 0.2), "small": np.full((3,), 0.3)}]

    def clipped(g):
        if clip_mode == "global":
            norm = math.sqrt(sum(float(np.sum(x * x)) for x in g.values()))
            return {k: x * min(1.0, 1.0 / norm) for k, x in g.items()}
        return {k: x * min(1.0, 1.0 / (np.linalg.norm(x) + 1e-6)) for k, x in g.items()}

    m = {k: np.zeros_like(x) for k, x in grads[0].items()}
    v = {k: np.zeros_like(x) for k, x in grads[0].items()}
    for t, g in enumerate(grads, start=1):
        g = clipped(g)
        m = {k: 0.5 * m[k] + 0.5 * g[k] for k in g}
        v = {k: 0.5 * v[k] + 0.5 * g[k] ** 2 for k in g}
        expected = {k: -0.1 * (m[k] / (1 - 0.5**t)) / (np.sqrt(v[k] / (1 - 0.5**t)) + cfg.eps) for k in g}
    tx = make_optimizer(cfg, 10)
    params = {k: jnp.zeros(x.shape) for k, x in grads[0].items()}
    state = tx.init(params)
    for g in grads:
        updates, state = tx.update({k: jnp.asarray(x, jnp.float32) for k, x in g.items()}, state, params)
    for k in expected:
        np.testing.assert_allclose(np.asarray(updates[k]), expected[k], rtol=1e-5)


def test_decay_only_on_masked_leaves():
    # Zero gradients: Adam's update is exactly 0, so only the decoupled decay moves the weights:
    # p <- p * (1 - lr * wd) on decayed leaves, untouched elsewhere.
    cfg = OptimConfig(lr=0.1, weight_decay=0.5, clip_norm=None)
    p = {"w": jnp.full((2, 2), 2.0), "b": jnp.full((2,), 2.0)}
    tx = make_optimizer(cfg, 10, wd_mask={"w": True, "b": False})
    updates, _ = tx.update(jax.tree.map(jnp.zeros_like, p), tx.init(p), p)
    new = optax.apply_updates(p, updates)
    np.testing.assert_allclose(np.asarray(new["w"]), 2.0 * (1 - 0.1 * 0.5), rtol=1e-5)
    np.testing.assert_array_equal(np.asarray(new["b"]), 2.0)


def test_coupled_adam_decay_goes_through_adam():
    # "adam" adds wd * p to the gradient before the moments: with zero gradients the first bias-corrected update is
    # g / (|g| + eps) = sign(p), so |step| = lr, independent of wd (unlike AdamW's lr * wd * p).
    cfg = OptimConfig(optimizer="adam", lr=0.1, weight_decay=0.5, clip_norm=None, eps=1e-12)
    p = {"w": jnp.asarray([3.0, -2.0])}
    tx = make_optimizer(cfg, 10)
    updates, _ = tx.update({"w": jnp.zeros(2)}, tx.init(p), p)
    np.testing.assert_allclose(np.asarray(updates["w"]), [-0.1, 0.1], rtol=1e-5)


def test_schedule_counts_advance_together():
    cfg = OptimConfig(lr=0.1, weight_decay=0.04, weight_decay_end=0.4, warmup_steps=1)
    p = {"w": jnp.ones(3)}
    tx = make_optimizer(cfg, 10)
    state = tx.init(p)
    for _ in range(4):
        _, state = tx.update({"w": jnp.ones(3)}, state, p)
    counts = [int(c) for _, c in optax.tree_utils.tree_get_all_with_path(state, "count")]
    assert len(counts) == 3 and set(counts) == {4}  # adam, weight decay, learning rate


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"optimizer": "lamb"}, "optimizer='lamb'"),
            ({"momentum": 1.0}, "momentum=1.0"),
        ({"lr": -1.0}, "lr=-1.0"),
        ({"b2": 1.0}, "b2=1.0"),
        ({"warmup_steps": 5, "warmup_fraction": 0.1}, "both set"),
        ({"warmup_fraction": 1.5}, "warmup_fraction=1.5"),
        ({"clip_norm": 0.0}, "clip_norm=0.0"),
        ({"clip_mode": "layer"}, r"clip_mode='layer'; expected one of \('global', 'per_tensor'\)"),
    ],
)
def test_bad_config_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        OptimConfig(**kwargs)


def test_bad_total_steps():
    with pytest.raises(ValueError, match="total_steps=0"):
        make_optimizer(OptimConfig(), 0)


def test_sgd_nesterov_matches_float64_reference():
    """optimizer="sgd": DeepMind nfnets' SGD (coupled weight decay, then Nesterov momentum) in float64 numpy."""
    cfg = OptimConfig(optimizer="sgd", lr=0.4, momentum=0.9, nesterov=True, weight_decay=0.01, clip_norm=None,
                      warmup_steps=0, min_lr=0.4)  # a constant lr keeps the reference to the momentum rule
    rng = np.random.default_rng(5)
    w = rng.normal(size=(3, 4))
    grads = [rng.normal(size=(3, 4)) for _ in range(3)]
    tx = make_optimizer(cfg, total_steps=10)
    params = {"w": jnp.asarray(w, jnp.float32)}
    state = tx.init(params)
    ref_w, buf = w.copy(), np.zeros_like(w)
    for g in grads:
        updates, state = tx.update({"w": jnp.asarray(g, jnp.float32)}, state, params)
        params = optax.apply_updates(params, updates)
        d = g + 0.01 * ref_w  # coupled L2 before the momentum
        buf = 0.9 * buf + d
        ref_w = ref_w - 0.4 * (d + 0.9 * buf)  # Nesterov: the gradient plus the momentum's look-ahead
    np.testing.assert_allclose(np.asarray(params["w"]), ref_w, rtol=1e-5, atol=1e-6)
    heavy_ball = make_optimizer(dataclasses.replace(cfg, nesterov=False), total_steps=10)
    hb_updates, _ = heavy_ball.update({"w": jnp.asarray(grads[0], jnp.float32)}, heavy_ball.init(params), params)
    nag_updates, _ = make_optimizer(cfg, 10).update({"w": jnp.asarray(grads[0], jnp.float32)},
                                                    make_optimizer(cfg, 10).init(params), params)
    assert not np.allclose(np.asarray(hb_updates["w"]), np.asarray(nag_updates["w"]))


def test_agc_in_make_optimizer_clips_scanned_blocks_like_unrolled_ones():
    """With scan_layers=True the block weights are stacked [depth, ...]; AGC must clip them exactly as the same
    weights unrolled (one unit per layer and output row), i.e. the stacked update is the unrolled ones stacked."""
    import equinox as eqx
    import vitcore

    cfg = OptimConfig(optimizer="sgd", lr=1.0, min_lr=1.0, warmup_steps=0, clip_norm=None, agc=0.01, momentum=0.0)
    template = eqx.filter(vitcore.create("vit-test", key=jax.random.key(0), scan_layers=True), eqx.is_inexact_array)

    def to_scanned(tree):
        stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *tree.blocks.layers)
        return eqx.tree_at(lambda m: m.blocks, tree, eqx.tree_at(lambda b: b.layers, template.blocks, stacked))

    params = eqx.filter(vitcore.create("vit-test", key=jax.random.key(1)), eqx.is_inexact_array)
    leaves, treedef = jax.tree.flatten(params)
    rng = np.random.default_rng(6)
    # Per leaf a gradient far below or far above the clip threshold, so both branches happen.
    grads = jax.tree.unflatten(treedef, [jnp.asarray(rng.normal(size=x.shape) * rng.choice([1e-5, 1.0]),
                                                     jnp.float32) for x in leaves])
    tx = make_optimizer(cfg, total_steps=1)
    want, _ = tx.update(grads, tx.init(params), params)
    got, _ = tx.update(to_scanned(grads), tx.init(to_scanned(params)), to_scanned(params))
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(to_scanned(want)), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-8)
    clipped = [not np.allclose(np.asarray(u), -np.asarray(g))
               for u, g in zip(jax.tree.leaves(want), jax.tree.leaves(grads), strict=True)]
    assert any(clipped) and not all(clipped)
