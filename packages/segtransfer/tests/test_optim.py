"""Schedule against its closed form; the optimizer chain against a hand-written float64 AdamW update."""

import jax.numpy as jnp
import numpy as np
import pytest
from segtransfer.segmentation.optim import finetune_optimizer, warmup_poly_schedule


def _closed_form(t, peak, total, warmup, f, end, power):
    if t < warmup:
        return peak * (f + (1 - f) * t / warmup)
    if t >= total:
        return end
    return (peak - end) * (1 - (t - warmup) / (total - warmup)) ** power + end


@pytest.mark.parametrize(
    ("peak", "total", "warmup", "f", "end", "power"),
    [(1e-4, 100, 10, 1e-6, 0.0, 1.0), (5e-4, 57, 0, 1e-6, 0.0, 1.0), (1e-3, 40, 7, 0.0, 1e-5, 0.9)],
)
def test_schedule_closed_form(peak, total, warmup, f, end, power):
    # float32 schedule arithmetic: absolute tolerance relative to the peak (step 0 is peak * 1e-6 - cancellation)
    s = warmup_poly_schedule(peak, total, warmup, warmup_start_factor=f, end_lr=end, power=power)
    for t in [
        0,
        1,
        warmup // 2,
        max(warmup - 1, 0),
        warmup,
        warmup + 1,
        (warmup + total) // 2,
        total - 1,
        total,
        total + 5,
    ]:
        np.testing.assert_allclose(
            float(s(t)),
            _closed_form(t, peak, total, warmup, f, end, power),
            rtol=1e-5,
            atol=1e-6 * peak,
            err_msg=f"step {t}",
        )


def test_schedule_rejects_bad_arguments():
    with pytest.raises(ValueError, match="warmup_steps"):
        warmup_poly_schedule(1e-4, 10, 10)
    with pytest.raises(ValueError, match="peak_lr"):
        warmup_poly_schedule(0.0, 10, 1)
    with pytest.raises(ValueError, match="end_lr"):
        warmup_poly_schedule(1e-4, 10, 1, end_lr=1e-3)


def test_chain_matches_hand_written_update():
    rng = np.random.default_rng(0)
    params = {"w": rng.standard_normal((3, 4)), "b": rng.standard_normal(4)}
    grads = [{k: 3 * rng.standard_normal(v.shape) for k, v in params.items()} for _ in range(3)]
    lr, wd, clip = 1e-2, 0.05, 1.0
    mask = {"w": True, "b": False}
    opt = finetune_optimizer(lr, wd, decay_mask=mask, clip_norm=clip)
    p = {k: jnp.asarray(v, jnp.float32) for k, v in params.items()}
    state = opt.init(p)
    # float64 reference: clip by global norm, Adam with bias correction, decoupled decay on masked leaves
    ref = {k: v.copy() for k, v in params.items()}
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v2 = {k: np.zeros_like(v) for k, v in params.items()}
    for t, g in enumerate(grads, start=1):
        updates, state = opt.update({k: jnp.asarray(x, jnp.float32) for k, x in g.items()}, state, p)
        p = {k: p[k] + updates[k] for k in p}
        norm = np.sqrt(sum((x**2).sum() for x in g.values()))
        scale = min(1.0, clip / norm)
        for k in ref:
            gk = g[k] * scale
            m[k] = 0.9 * m[k] + 0.1 * gk
            v2[k] = 0.999 * v2[k] + 0.001 * gk**2
            step = (m[k] / (1 - 0.9**t)) / (np.sqrt(v2[k] / (1 - 0.999**t)) + 1e-8)
            if mask[k]:
                step = step + wd * ref[k]
            ref[k] = ref[k] - lr * step
    for k in ref:
        np.testing.assert_allclose(np.asarray(p[k]), ref[k], rtol=1e-5, atol=1e-6)
