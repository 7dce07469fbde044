"""Position embeddings: fixed 2D sin-cos tables (MAE) and bicubic resampling of learned ones."""

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float


def sincos_1d(dim: int, positions: np.ndarray) -> np.ndarray:
    """[len(positions), dim]: sin(p * w_i) for the first half, cos(p * w_i) for the second,
    w_i = 10000^(-i / (dim/2)) (MAE's `get_1d_sincos_pos_embed_from_grid`)."""
    if dim % 2:
        raise ValueError(f"dim={dim} must be even for a 1D sin-cos embedding")
    omega = 1.0 / 10000 ** (np.arange(dim // 2, dtype=np.float64) / (dim / 2.0))
    angles = np.asarray(positions, np.float64).reshape(-1)[:, None] * omega[None, :]
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)


def sincos_2d(dim: int, grid_size: tuple[int, int]) -> np.ndarray:
    """Fixed 2D sin-cos table [gh * gw, dim] in row-major patch order, float32 numpy.

    Same layout as MAE's `get_2d_sincos_pos_embed`: the first dim/2 channels encode the column (w) index, the
    last dim/2 the row (h) index. No prefix rows: a class token gets a zero embedding (as in MAE).
    """
    if dim % 4:
        raise ValueError(f"dim={dim} must be a multiple of 4 for a 2D sin-cos embedding")
    gh, gw = grid_size
    rows, cols = np.meshgrid(np.arange(gh), np.arange(gw), indexing="ij")
    table = np.concatenate([sincos_1d(dim // 2, cols), sincos_1d(dim // 2, rows)], axis=1)
    return table.astype(np.float32)


def resample_grid(
    table: Float[Array, "n d"], old_grid: tuple[int, int], new_grid: tuple[int, int]
) -> Float[Array, "m d"]:
    """Bicubic resampling of a row-major [gh * gw, d] grid table to `new_grid` (half-pixel centres, Keys
    a=-0.5 kernel, antialiased when shrinking: `jax.image.resize`)."""
    gh, gw = old_grid
    if table.shape[0] != gh * gw:
        raise ValueError(f"table has {table.shape[0]} rows; expected {gh}*{gw}={gh * gw} for grid {old_grid}")
    grid = table.reshape(gh, gw, table.shape[1]).astype(jnp.float32)
    out = jax.image.resize(grid, (*new_grid, table.shape[1]), method="bicubic")
    return out.reshape(new_grid[0] * new_grid[1], table.shape[1]).astype(table.dtype)
