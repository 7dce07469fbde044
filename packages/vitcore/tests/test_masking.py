"""MAE random masking semantics and patchify order."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import vitcore


def test_random_masking_semantics():
    ids_keep, mask, ids_restore = vitcore.random_masking(jax.random.key(0), 6, 16, 0.75)
    assert ids_keep.shape == (6, 4) and mask.shape == (6, 16) and ids_restore.shape == (6, 16)
    assert mask.dtype == jnp.float32 and ids_keep.dtype == jnp.int32
    ids_keep, mask, ids_restore = map(np.asarray, (ids_keep, mask, ids_restore))
    for b in range(6):
        assert len(set(ids_keep[b])) == 4
        expected = np.ones(16)
        expected[ids_keep[b]] = 0
        np.testing.assert_array_equal(mask[b], expected)
        # ids_restore inverts the shuffle: kept-then-masked sequence -> patch order
        shuffled = np.concatenate([ids_keep[b], np.setdiff1d(np.arange(16), ids_keep[b])])
        assert sorted(ids_restore[b]) == list(range(16))
        np.testing.assert_array_equal(shuffled[ids_restore[b]][mask[b] == 0], np.flatnonzero(mask[b] == 0))
        assert set(shuffled[ids_restore[b]]) == set(range(16))
    assert not np.array_equal(ids_keep[0], ids_keep[1])  # per-example masks


def test_random_masking_is_uniform():
    _, mask, _ = vitcore.random_masking(jax.random.key(1), 4000, 8, 0.5)
    freq = np.asarray(mask).mean(0)
    np.testing.assert_allclose(freq, 0.5, atol=0.03)


def test_random_masking_errors():
    with pytest.raises(ValueError, match="mask_ratio"):
        vitcore.random_masking(jax.random.key(0), 2, 16, 1.0)
    with pytest.raises(ValueError, match="mask_ratio"):
        vitcore.random_masking(jax.random.key(0), 2, 3, 0.9)


def test_patchify_order_and_inverse():
    x = jax.random.normal(jax.random.key(0), (2, 8, 12, 3))
    p = vitcore.patchify(x, 4)
    assert p.shape == (2, 6, 48)
    xn = np.asarray(x)
    for i in range(2):
        for j in range(3):
            np.testing.assert_array_equal(
                p[:, i * 3 + j], xn[:, 4 * i : 4 * i + 4, 4 * j : 4 * j + 4].reshape(2, 48)
            )
    np.testing.assert_array_equal(vitcore.unpatchify(p, 4, (8, 12)), x)
    with pytest.raises(ValueError, match="images"):
        vitcore.patchify(x, 5)
    with pytest.raises(ValueError, match="image_size"):
        vitcore.unpatchify(p, 4, (8, 8))
