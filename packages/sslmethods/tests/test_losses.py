"""Each loss against an independent float64 numpy re-derivation of its canonical formula, plus closed forms,
stop-gradient checks and global-batch equivalence on 4 fake CPU devices."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec
from sslmethods.blocks import losses

RTOL = ATOL = 1e-5


@pytest.fixture
def rng():
    """A fresh generator per test, so a test's values do not depend on which tests ran before it."""
    return np.random.default_rng(0)



def _f32(x):
    return jnp.asarray(x, jnp.float32)


def _normalize(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _log_softmax(x, axis=-1):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


# ---- numpy references, written from the canonical code ----


def np_simclr(h1, h2, temperature):
    """google-research/simclr add_contrastive_loss: returns reduce_mean(loss_a + loss_b)."""
    h1, h2 = _normalize(h1.astype(np.float64)), _normalize(h2.astype(np.float64))
    n = len(h1)
    masks = np.eye(n)
    aa = h1 @ h1.T / temperature - masks * 1e9
    bb = h2 @ h2.T / temperature - masks * 1e9
    ab = h1 @ h2.T / temperature
    ba = h2 @ h1.T / temperature
    labels = np.concatenate([np.eye(n), np.zeros((n, n))], axis=1)
    loss_a = -(labels * _log_softmax(np.concatenate([ab, aa], 1))).sum(1)
    loss_b = -(labels * _log_softmax(np.concatenate([ba, bb], 1))).sum(1)
    return np.mean(loss_a + loss_b)


def np_byol(x, y):
    def l2n(v):
        return v / np.sqrt(np.maximum((v**2).sum(-1, keepdims=True), 1e-12))

    return np.mean(((l2n(x) - l2n(y)) ** 2).sum(-1))


def np_dino(student, teacher, center, student_temp, teacher_temp):
    """DINOLoss.forward on the [v*b, k] / [g*b, k] concatenated layout."""
    v, b, k = student.shape
    g = teacher.shape[0]
    s = student.reshape(v * b, k).astype(np.float64) / student_temp
    s_chunks = np.split(s, v)
    t = (teacher.reshape(g * b, k).astype(np.float64) - center) / teacher_temp
    t = np.exp(_log_softmax(t))
    t_chunks = np.split(t, g)
    total, terms = 0.0, 0
    for iq, q in enumerate(t_chunks):
        for vi in range(len(s_chunks)):
            if vi == iq:
                continue
            total += np.mean(np.sum(-q * _log_softmax(s_chunks[vi]), axis=-1))
            terms += 1
    return total / terms


def np_mae(imgs_nchw, pred, mask, p):
    """MaskedAutoencoderViT.patchify + forward_loss with norm_pix_loss=True (torch var: unbiased)."""
    n, c, hh, ww = imgs_nchw.shape
    h, w = hh // p, ww // p
    x = imgs_nchw.reshape(n, c, h, p, w, p).astype(np.float64)
    x = np.einsum("nchpwq->nhwpqc", x).reshape(n, h * w, p * p * c)
    mean = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True, ddof=1)
    target = (x - mean) / (var + 1e-6) ** 0.5
    loss = ((pred - target) ** 2).mean(-1)
    return (loss * mask).sum() / mask.sum()


def np_clip(img, txt, logit_scale):
    """open_clip ClipLoss on normalised features, logit_scale = exp(clamped parameter)."""
    img, txt = _normalize(img.astype(np.float64)), _normalize(txt.astype(np.float64))
    lpi = logit_scale * img @ txt.T
    lpt = logit_scale * txt @ img.T
    idx = np.arange(len(img))
    return (-_log_softmax(lpi)[idx, idx].mean() - _log_softmax(lpt)[idx, idx].mean()) / 2


def np_negative_cosine(p, z):
    """SimSiam eq. 1: D(p, z) = -p/|p|_2 . z/|z|_2, averaged over the batch."""
    p, z = p.astype(np.float64), z.astype(np.float64)
    return -np.mean([pi @ zi / (np.linalg.norm(pi) * np.linalg.norm(zi)) for pi, zi in zip(p, z, strict=True)])


def np_vicreg(z, z_prime, lam=25.0, mu=25.0, nu=1.0, eps=1e-4):
    """VICReg eq. 1-6 with the canonical code's conventions: the invariance is the MSE over all n*d entries
    (the paper's s(Z, Z') / d), the two variance terms are averaged, the two covariance terms summed."""
    z, z_prime = z.astype(np.float64), z_prime.astype(np.float64)
    n, d = z.shape

    def v(zz):  # eq. 1-2, gamma = 1, unbiased variance
        return np.mean([max(0.0, 1.0 - np.sqrt(np.var(zz[:, j], ddof=1) + eps)) for j in range(d)])

    def c(zz):  # eq. 3-4
        cov = np.cov(zz, rowvar=False)
        return sum(cov[i, j] ** 2 for i in range(d) for j in range(d) if i != j) / d

    s = np.mean([np.sum((z[i] - z_prime[i]) ** 2) for i in range(n)]) / d
    return lam * s + mu * (v(z) + v(z_prime)) / 2 + nu * (c(z) + c(z_prime))


def np_barlow_twins(za, zb, lambd=5e-3):
    """Barlow Twins eq. 1-2: C_ij = sum_b za_bi zb_bj / sqrt(sum_b za_bi^2) sqrt(sum_b zb_bj^2) on embeddings
    centred over the batch; L = sum_i (1 - C_ii)^2 + lambd sum_{i != j} C_ij^2."""
    za, zb = za.astype(np.float64), zb.astype(np.float64)
    za, zb = za - za.mean(0), zb - zb.mean(0)
    d = za.shape[1]
    c = np.array([[za[:, i] @ zb[:, j] / np.sqrt((za[:, i] ** 2).sum() * (zb[:, j] ** 2).sum())
                   for j in range(d)] for i in range(d)])
    return sum((1 - c[i, i]) ** 2 for i in range(d)) + lambd * sum(c[i, j] ** 2 for i in range(d)
                                                                   for j in range(d) if i != j)


def _orthogonal_columns():
    """[4, 2] embeddings with centred, orthogonal columns of variance 16/3 > 1 (std 2.3)."""
    return 2.0 * np.array([[1.0, 1.0], [-1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]])


# ---- NT-Xent ----


@pytest.mark.parametrize("temperature", [0.1, 0.5])
def test_nt_xent_matches_simclr(temperature, rng):
    z1, z2 = rng.normal(size=(8, 16)), rng.normal(size=(8, 16))
    got = losses.nt_xent(_f32(z1), _f32(z2), temperature=temperature)
    # ours averages the two directions; SimCLR sums them
    np.testing.assert_allclose(2 * float(got), np_simclr(z1, z2, temperature), rtol=RTOL, atol=ATOL)


def test_nt_xent_all_equal_is_log_2n_minus_1():
    n = 6
    z = jnp.ones((n, 5), jnp.float32)
    np.testing.assert_allclose(float(losses.nt_xent(z, z)), math.log(2 * n - 1), rtol=RTOL)


def test_nt_xent_rejects_mismatched_shapes(without_jaxtyping):
    with pytest.raises(ValueError, match=r"z1.shape=\(4, 3\) and z2.shape=\(5, 3\): expected the same"):
        losses.nt_xent(jnp.ones((4, 3)), jnp.ones((5, 3)))


# ---- BYOL ----


def test_byol_matches_regression_loss(rng):
    p, z = rng.normal(size=(8, 16)), rng.normal(size=(8, 16))
    np.testing.assert_allclose(float(losses.byol_loss(_f32(p), _f32(z))), np_byol(p, z), rtol=RTOL, atol=ATOL)
    # 2 - 2 cos
    cos = (_normalize(p) * _normalize(z)).sum(-1)
    np.testing.assert_allclose(float(losses.byol_loss(_f32(p), _f32(z))), np.mean(2 - 2 * cos), rtol=RTOL)


def test_byol_equal_vectors_is_zero(rng):
    p = rng.normal(size=(4, 8))
    assert abs(float(losses.byol_loss(_f32(p), _f32(3.0 * p)))) < 1e-6


def test_byol_no_gradient_to_target(rng):
    p, z = _f32(rng.normal(size=(4, 8))), _f32(rng.normal(size=(4, 8)))
    g_p, g_z = jax.grad(losses.byol_loss, argnums=(0, 1))(p, z)
    assert float(jnp.abs(g_p).sum()) > 0
    assert float(jnp.abs(g_z).sum()) == 0.0


# ---- building blocks: SimSiam, VICReg, Barlow Twins ----


def test_negative_cosine_matches_simsiam(rng):
    p, z = rng.normal(size=(8, 16)), rng.normal(size=(8, 16))
    got = losses.negative_cosine(_f32(p), _f32(z))
    np.testing.assert_allclose(float(got), np_negative_cosine(p, z), rtol=RTOL, atol=ATOL)
    assert float(losses.negative_cosine(_f32(p), _f32(2.5 * p))) == pytest.approx(-1.0, abs=1e-6)
    g_p, g_z = jax.grad(losses.negative_cosine, argnums=(0, 1))(_f32(p), _f32(z))
    assert float(jnp.abs(g_p).sum()) > 0 and float(jnp.abs(g_z).sum()) == 0.0  # stop-gradient on the target
    cos = losses.cosine_similarity(_f32(p), _f32(z))
    np.testing.assert_allclose(np.asarray(cos), [a @ b / np.linalg.norm(a) / np.linalg.norm(b) for a, b in
                                                 zip(p, z, strict=True)], rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("coefficients", [{}, {"sim_coeff": 1.0, "std_coeff": 3.0, "cov_coeff": 0.5}])
def test_vicreg_matches_the_paper_with_canonical_conventions(rng, coefficients):
    z1, z2 = rng.normal(size=(16, 8)), 0.3 * rng.normal(size=(16, 8))  # std 0.3 < 1: the variance term is live
    got = losses.vicreg_loss(_f32(z1), _f32(z2), **coefficients)
    names = {"sim_coeff": "lam", "std_coeff": "mu", "cov_coeff": "nu"}
    expected = np_vicreg(z1, z2, **{names[k]: v for k, v in coefficients.items()})
    np.testing.assert_allclose(float(got), expected, rtol=RTOL, atol=ATOL)
    # Identical views with decorrelated columns of std > 1: every term is zero.
    z = _f32(_orthogonal_columns())
    assert abs(float(losses.vicreg_loss(z, z))) < 1e-6


@pytest.mark.parametrize("lambd", [5e-3, 0.5])
def test_barlow_twins_matches_the_paper(rng, lambd):
    z1 = rng.normal(size=(16, 8))
    z2 = z1 + 0.5 * rng.normal(size=(16, 8))  # correlated views: C is far from 0 and from I
    got = losses.barlow_twins_loss(_f32(z1), _f32(z2), lambd=lambd)
    # The paper's C has no eps; the canonical BatchNorm's eps 1e-5 moves C by ~1e-5 relative.
    np.testing.assert_allclose(float(got), np_barlow_twins(z1, z2, lambd), rtol=1e-4, atol=1e-5)
    z = _f32(_orthogonal_columns())
    assert abs(float(losses.barlow_twins_loss(z, z))) < 1e-5  # C = I


def test_barlow_twins_default_lambda_is_the_papers(rng):
    z1, z2 = rng.normal(size=(8, 4)), rng.normal(size=(8, 4))
    np.testing.assert_allclose(float(losses.barlow_twins_loss(_f32(z1), _f32(z2))), np_barlow_twins(z1, z2, 5e-3),
                               rtol=1e-4)


def test_building_blocks_check_their_inputs(without_jaxtyping):
    with pytest.raises(ValueError, match=r"prediction.shape=\(4, 3\) and target.shape=\(4, 2\)"):
        losses.negative_cosine(jnp.ones((4, 3)), jnp.ones((4, 2)))
    with pytest.raises(ValueError, match=r"z1.shape=\(4, 3\) and z2.shape=\(5, 3\)"):
        losses.vicreg_loss(jnp.ones((4, 3)), jnp.ones((5, 3)))
    with pytest.raises(ValueError, match=r"z1.shape=\(1, 3\): batch statistics need a batch of at least 2"):
        losses.barlow_twins_loss(jnp.ones((1, 3)), jnp.ones((1, 3)))
    with pytest.raises(ValueError, match=r"z1.shape=\(1, 3\): batch statistics need a batch of at least 2"):
        losses.vicreg_loss(jnp.ones((1, 3)), jnp.ones((1, 3)))


# ---- DINO ----


@pytest.mark.parametrize("v,g", [(2, 2), (5, 2)])
def test_dino_matches_dinoloss(v, g, rng):
    b, k = 4, 32
    s, t, c = rng.normal(size=(v, b, k)), rng.normal(size=(g, b, k)), rng.normal(size=(k,))
    got = losses.dino_loss(_f32(s), _f32(t), _f32(c), teacher_temp=0.04, student_temp=0.1)
    np.testing.assert_allclose(float(got), np_dino(s, t, c, 0.1, 0.04), rtol=RTOL, atol=ATOL)


def test_dino_traced_temperature_from_schedule(rng):
    from sslmethods.blocks.schedules import dino_teacher_temperature

    s, t, c = rng.normal(size=(3, 2, 16)), rng.normal(size=(2, 2, 16)), rng.normal(size=(16,))
    temp = dino_teacher_temperature(30)

    @jax.jit
    def loss_at(step):
        return losses.dino_loss(_f32(s), _f32(t), _f32(c), teacher_temp=temp(step))

    for step, tt in [(0, 0.04), (15, 0.055), (40, 0.07)]:
        np.testing.assert_allclose(float(loss_at(jnp.int32(step))), np_dino(s, t, c, 0.1, tt), rtol=RTOL)


def test_dino_uniform_is_log_k():
    k = 64
    s = jnp.zeros((4, 3, k), jnp.float32)
    t = jnp.full((2, 3, k), 0.7, jnp.float32)
    got = losses.dino_loss(s, t, jnp.zeros((k,), jnp.float32), teacher_temp=0.04)
    np.testing.assert_allclose(float(got), math.log(k), rtol=RTOL)


def test_dino_no_gradient_to_teacher_or_center(rng):
    s, t, c = _f32(rng.normal(size=(4, 2, 8))), _f32(rng.normal(size=(2, 2, 8))), _f32(rng.normal(size=(8,)))
    grads = jax.grad(lambda s, t, c: losses.dino_loss(s, t, c, teacher_temp=0.05), argnums=(0, 1, 2))(s, t, c)
    assert float(jnp.abs(grads[0]).sum()) > 0
    assert float(jnp.abs(grads[1]).sum()) == 0.0 and float(jnp.abs(grads[2]).sum()) == 0.0


def test_dino_rejects_bad_teacher():
    with pytest.raises(ValueError, match="teacher.shape"):
        losses.dino_loss(jnp.zeros((2, 3, 4)), jnp.zeros((3, 3, 4)), jnp.zeros((4,)), teacher_temp=0.04)


# ---- MAE ----


def test_mae_matches_forward_loss(rng):
    b, size, p, c = 2, 16, 4, 3
    imgs = rng.uniform(size=(b, size, size, c))
    n, d = (size // p) ** 2, p * p * c
    pred = rng.normal(size=(b, n, d))
    mask = (rng.uniform(size=(b, n)) < 0.75).astype(np.float64)
    target = losses.patchify(_f32(imgs), p)
    got = losses.mae_loss(_f32(pred), target, _f32(mask))
    ref = np_mae(np.transpose(imgs, (0, 3, 1, 2)), pred, mask, p)
    np.testing.assert_allclose(float(got), ref, rtol=RTOL, atol=ATOL)


def test_mae_ignores_visible_patch_predictions(rng):
    b, n, d = 2, 16, 12
    pred, target = _f32(rng.normal(size=(b, n, d))), _f32(rng.uniform(size=(b, n, d)))
    mask = jnp.asarray(rng.uniform(size=(b, n)) < 0.5)
    grad = jax.grad(losses.mae_loss)(pred, target, mask)
    assert float(jnp.abs(jnp.where(mask[..., None], 0.0, grad)).max()) == 0.0
    assert float(jnp.abs(jnp.where(mask[..., None], grad, 0.0)).max()) > 0.0
    changed = jnp.where(mask[..., None], pred, 1e3)  # arbitrary values at visible patches: same loss
    assert float(losses.mae_loss(changed, target, mask)) == float(losses.mae_loss(pred, target, mask))


def test_mae_without_norm_pix_is_plain_mse(rng):
    pred, target = rng.normal(size=(1, 4, 6)), rng.normal(size=(1, 4, 6))
    mask = np.array([[1.0, 0.0, 1.0, 0.0]])
    got = losses.mae_loss(_f32(pred), _f32(target), _f32(mask), norm_pix_loss=False)
    ref = (((pred - target) ** 2).mean(-1) * mask).sum() / mask.sum()
    np.testing.assert_allclose(float(got), ref, rtol=RTOL)


# ---- CLIP ----


def test_clip_matches_open_clip(rng):
    img, txt = rng.normal(size=(8, 16)), rng.normal(size=(8, 16))
    s = math.log(1 / 0.07)
    got = losses.clip_loss(_f32(img), _f32(txt), jnp.float32(s))
    np.testing.assert_allclose(float(got), np_clip(img, txt, math.exp(s)), rtol=RTOL, atol=ATOL)


def test_clip_logit_scale_clamped_at_ln_100(rng):
    img, txt = rng.normal(size=(8, 16)), rng.normal(size=(8, 16))
    at_max = losses.clip_loss(_f32(img), _f32(txt), jnp.float32(math.log(100.0)))
    above = losses.clip_loss(_f32(img), _f32(txt), jnp.float32(10.0))
    assert float(above) == float(at_max)
    np.testing.assert_allclose(float(above), np_clip(img, txt, 100.0), rtol=RTOL, atol=ATOL)
    g = jax.grad(lambda s: losses.clip_loss(_f32(img), _f32(txt), s))(jnp.float32(10.0))
    assert float(g) == 0.0


def test_clip_symmetric(rng):
    img, txt = _f32(rng.normal(size=(6, 8))), _f32(rng.normal(size=(6, 8)))
    a = losses.clip_loss(img, txt, jnp.float32(2.0))
    b = losses.clip_loss(txt, img, jnp.float32(2.0))
    np.testing.assert_allclose(float(a), float(b), rtol=1e-6)


# ---- supervised ----


def test_softmax_xent_int_and_onehot_agree_with_numpy(rng):
    logits = rng.normal(size=(5, 7))
    labels = rng.integers(0, 7, size=5)
    ref = -_log_softmax(logits)[np.arange(5), labels].mean()
    np.testing.assert_allclose(float(losses.softmax_xent(_f32(logits), jnp.asarray(labels))), ref, rtol=RTOL)
    onehot = np.eye(7)[labels]
    np.testing.assert_allclose(float(losses.softmax_xent(_f32(logits), _f32(onehot))), ref, rtol=RTOL)


def test_multilabel_targets():
    labels = jnp.asarray([[2, 0, -1, -1], [1, -1, -1, -1], [3, 3, 1, 0], [-1, -1, -1, -1]], jnp.int32)
    k, eps = 5, 0.1
    got = np.asarray(losses.multilabel_targets(labels, k, smoothing=eps))
    expected = np.zeros((4, k))
    expected[0, [2, 0]] = 0.5
    expected[1, 1] = 1.0
    expected[2, 3], expected[2, 1], expected[2, 0] = 0.5, 0.25, 0.25
    expected[3] = 1.0 / k  # no valid label: uniform
    expected = (1 - eps) * expected + eps / k
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(got.sum(-1), 1.0, rtol=1e-6)


# ---- contract: float32, jit, bfloat16 inputs ----


def test_losses_are_float32_for_bfloat16_inputs(rng):
    a = jnp.asarray(rng.normal(size=(4, 8)), jnp.bfloat16)
    b = jnp.asarray(rng.normal(size=(4, 8)), jnp.bfloat16)
    outs = [
        jax.jit(losses.nt_xent)(a, b),
        jax.jit(losses.byol_loss)(a, b),
        jax.jit(losses.clip_loss)(a, b, jnp.float32(1.0)),
        jax.jit(losses.softmax_xent)(a, jnp.zeros((4,), jnp.int32)),
        losses.dino_loss(jnp.stack([a, b]), a[None], jnp.zeros((8,), jnp.bfloat16), teacher_temp=0.04),
        losses.mae_loss(a[None], b[None], jnp.ones((1, 4), bool)),
        jax.jit(losses.negative_cosine)(a, b),
        jax.jit(losses.vicreg_loss)(a, b),
        jax.jit(losses.barlow_twins_loss)(a, b),
    ]
    for out in outs:
        assert out.dtype == jnp.float32 and out.shape == () and bool(jnp.isfinite(out))


# ---- global batch under sharding ----


def test_global_batch_losses_sharded_equal_unsharded(rng):
    devices = jax.devices()
    if len(devices) < 4:
        pytest.skip("needs the 4 fake CPU devices of the root conftest")
    # Auto axis types (jax.make_mesh defaults to Explicit in this JAX): the partitioner gathers the batch.
    mesh = jax.sharding.Mesh(np.asarray(devices[:4]), ("data",))
    rows = NamedSharding(mesh, PartitionSpec("data"))
    crops = NamedSharding(mesh, PartitionSpec(None, "data"))
    z1, z2 = _f32(rng.normal(size=(8, 16))), _f32(rng.normal(size=(8, 16)))
    s, t, c = (
        _f32(rng.normal(size=(4, 8, 32))),
        _f32(rng.normal(size=(2, 8, 32))),
        _f32(rng.normal(size=(32,))),
    )

    def dino(s, t, c):
        return losses.dino_loss(s, t, c, teacher_temp=0.04)

    sharded_nt = jax.jit(losses.nt_xent)(jax.device_put(z1, rows), jax.device_put(z2, rows))
    sharded_dino = jax.jit(dino)(jax.device_put(s, crops), jax.device_put(t, crops), c)
    assert len(jax.device_put(z1, rows).sharding.device_set) == 4
    np.testing.assert_allclose(float(sharded_nt), float(losses.nt_xent(z1, z2)), rtol=1e-6)
    np.testing.assert_allclose(
        float(sharded_nt), np_simclr(np.asarray(z1), np.asarray(z2), 0.1) / 2, rtol=RTOL
    )
    np.testing.assert_allclose(float(sharded_dino), float(dino(s, t, c)), rtol=1e-6)
    # a per-shard loss would differ: the negatives and the pair averages span all shards
    z1n, z2n = np.asarray(z1), np.asarray(z2)
    per_shard = np.mean([np_simclr(z1n[i : i + 2], z2n[i : i + 2], 0.1) / 2 for i in (0, 2, 4, 6)])
    assert abs(per_shard - float(sharded_nt)) > 1e-3
    # VICReg's and Barlow Twins' batch statistics also cover the global batch.
    for loss_fn, reference in ((losses.vicreg_loss, np_vicreg), (losses.barlow_twins_loss, np_barlow_twins)):
        sharded = jax.jit(loss_fn)(jax.device_put(z1, rows), jax.device_put(z2, rows))
        np.testing.assert_allclose(float(sharded), reference(z1n, z2n), rtol=1e-4)
