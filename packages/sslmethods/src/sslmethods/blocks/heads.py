"""Projection / prediction heads of the self-supervised methods: MLP heads (SimCLR, BYOL) and DINO's head.

Heads act on a batch of pooled features ``[b d]`` and compute in float32. Widths are arguments, so tests build
tiny heads; the factory functions give the canonical layouts:

- ``simclr_projector``: google-research/simclr ``tf2/model.py::ProjectionHead`` (``proj_head_mode="nonlinear"``,
  3 layers): ``Linear(d) -> norm -> ReLU -> Linear(d) -> norm -> ReLU -> Linear(128)``, hidden width = the
  backbone width as in SimCLR.
- ``byol_mlp``: deepmind-research ``byol/utils/networks.py::MLP`` for the projector (4096 -> 256) and the
  predictor (4096 -> 256): ``Linear(4096) -> norm -> ReLU -> Linear(256)``.
- ``DINOHead``: facebookresearch/dino ``vision_transformer.py::DINOHead`` (``nlayers=3, use_bn=False,
  norm_last_layer=True``): ``Linear(2048) -> GELU -> Linear(2048) -> GELU -> Linear(256) -> L2-normalise ->
  weight-normed Linear(K, no bias)`` with the weight-norm gain fixed to 1.

Normalisation in the MLP heads (``norm=``). SimCLR and BYOL put BatchNorm in their heads (ResNet backbones train
with batch statistics). Our ViT backbones have no BatchNorm, and the study notes that BYOL suffers from lacking
the "strong normalisation" it relies on. The choice is explicit:

- ``"layer"`` (default): LayerNorm over features (per example, eps 1e-5): the ViT's own normalisation; examples
  stay independent, so the result does not depend on how the batch is split over devices.
- ``"batch"``: BatchNorm with *batch statistics* over the whole (global, under ``jit`` over sharded arrays) batch
  axis, learned scale and offset, eps 1e-5, the canonical heads' training-mode behaviour. No running averages are
  kept, since the heads are discarded after pre-training (only the encoder is exported).
- ``"none"``: no normalisation.

Weights are drawn from trunc_normal(0.02) with zero biases (DINO's ``_init_weights``, also used for the SimCLR and
BYOL heads here instead of their frameworks' fan-in scaled defaults: the normalisation layers remove the scale).
Parameters named ``weight`` are the matmuls, so ``vitcore.weight_decay_mask`` decays exactly those.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray
from vitcore import Linear, trunc_normal

__all__ = ["HEAD_NORMS", "BatchStatNorm", "DINOHead", "FeatureNorm", "MLPHead", "byol_mlp", "simclr_projector"]

HEAD_NORMS = ("layer", "batch", "none")
_ACTIVATIONS = ("relu", "gelu")
_EPS = 1e-5  # torch / haiku BatchNorm and LayerNorm default


def _check_dim(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r}: expected a positive int width")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name}={value!r}: expected one of {choices}")


class FeatureNorm(eqx.Module):
    """LayerNorm over the feature axis of a ``[b d]`` batch (float32, learned scale and offset)."""

    scale: Float[Array, " d"]
    bias: Float[Array, " d"]

    def __init__(self, dim: int):
        self.scale = jnp.ones((dim,), jnp.float32)
        self.bias = jnp.zeros((dim,), jnp.float32)

    def __call__(self, x: Float[Array, "b d"]) -> Float[Array, "b d"]:
        x = x.astype(jnp.float32)
        mean = jnp.mean(x, axis=-1, keepdims=True)
        var = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
        return (x - mean) * jax.lax.rsqrt(var + _EPS) * self.scale + self.bias


class BatchStatNorm(eqx.Module):
    """BatchNorm in training mode: normalise every feature with the mean and (biased) variance over the batch
    axis, then scale and offset. Inside one ``jit`` over a sharded batch the statistics are global (SimCLR's
    global BN)."""

    scale: Float[Array, " d"]
    bias: Float[Array, " d"]

    def __init__(self, dim: int):
        self.scale = jnp.ones((dim,), jnp.float32)
        self.bias = jnp.zeros((dim,), jnp.float32)

    def __call__(self, x: Float[Array, "b d"]) -> Float[Array, "b d"]:
        if x.shape[0] < 2:
            raise ValueError(f"x.shape={x.shape}: batch-statistics normalisation needs a batch of at least 2")
        x = x.astype(jnp.float32)
        mean = jnp.mean(x, axis=0, keepdims=True)
        var = jnp.mean(jnp.square(x - mean), axis=0, keepdims=True)
        return (x - mean) * jax.lax.rsqrt(var + _EPS) * self.scale + self.bias


def _make_norm(norm: str, dim: int) -> FeatureNorm | BatchStatNorm | None:
    if norm == "layer":
        return FeatureNorm(dim)
    if norm == "batch":
        return BatchStatNorm(dim)
    return None


def _activate(x: Float[Array, "b d"], activation: str) -> Float[Array, "b d"]:
    # DINO uses torch's nn.GELU, the exact erf form (jax.nn.gelu defaults to the tanh approximation).
    return jax.nn.relu(x) if activation == "relu" else jax.nn.gelu(x, approximate=False)


class MLPHead(eqx.Module):
    """``Linear -> [norm] -> act`` for every hidden width, then a final ``Linear`` (with bias).

    ``hidden``: the hidden widths (``(4096,)`` for BYOL, ``(d, d)`` for SimCLR). ``norm``: one of
    ``HEAD_NORMS`` (see the module docstring). ``activation``: ``relu`` or ``gelu`` (exact).
    """

    layers: tuple[Linear, ...]
    norms: tuple[FeatureNorm | BatchStatNorm | None, ...]
    activation: str = eqx.field(static=True)

    def __init__(
        self,
        in_dim: int,
        hidden: tuple[int, ...],
        out_dim: int,
        *,
        key: PRNGKeyArray,
        norm: str = "layer",
        activation: str = "relu",
    ):
        _check_dim("in_dim", in_dim)
        _check_dim("out_dim", out_dim)
        for width in hidden:
            _check_dim("hidden width", width)
        _check_choice("norm", norm, HEAD_NORMS)
        _check_choice("activation", activation, _ACTIVATIONS)
        dims = (in_dim, *hidden, out_dim)
        keys = jr.split(key, len(dims) - 1)
        self.layers = tuple(Linear(a, b, key=k) for a, b, k in zip(dims[:-1], dims[1:], keys, strict=True))
        self.norms = tuple(_make_norm(norm, width) for width in hidden)
        self.activation = activation

    def __call__(self, x: Float[Array, "b d"]) -> Float[Array, "b e"]:
        x = x.astype(jnp.float32)
        for layer, norm in zip(self.layers[:-1], self.norms, strict=True):
            x = layer(x)
            if norm is not None:
                x = norm(x)
            x = _activate(x, self.activation)
        return self.layers[-1](x)


def simclr_projector(
    in_dim: int, *, key: PRNGKeyArray, hidden_dim: int | None = None, out_dim: int = 128, num_layers: int = 3,
    norm: str = "layer",
) -> MLPHead:
    """SimCLR's nonlinear projection head: ``num_layers`` linear layers, hidden width ``hidden_dim`` (default:
    ``in_dim``, the backbone width, as SimCLR), output ``out_dim`` (128). SimCLR's extra BatchNorm on the output
    is left out: NT-Xent L2-normalises the output anyway."""
    if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
        raise ValueError(f"num_layers={num_layers!r}: expected a positive int")
    width = in_dim if hidden_dim is None else hidden_dim
    return MLPHead(in_dim, (width,) * (num_layers - 1), out_dim, key=key, norm=norm, activation="relu")


def byol_mlp(
    in_dim: int, *, key: PRNGKeyArray, hidden_dim: int = 4096, out_dim: int = 256, norm: str = "layer"
) -> MLPHead:
    """BYOL's projector / predictor MLP: ``Linear(hidden_dim) -> norm -> ReLU -> Linear(out_dim)``."""
    return MLPHead(in_dim, (hidden_dim,), out_dim, key=key, norm=norm, activation="relu")


class WeightNormLinear(eqx.Module):
    """Bias-free linear layer with weight normalisation and the gain fixed to 1: every output unit's weight row
    is ``v / |v|`` (torch ``weight_norm(nn.Linear(..., bias=False))`` with ``weight_g`` = 1, frozen). ``weight``
    holds ``v`` (decayed like DINO's ``last_layer.weight_v``; the decay only changes its norm, not the
    output)."""

    weight: Float[Array, "out in"]

    def __init__(self, in_dim: int, out_dim: int, *, key: PRNGKeyArray):
        self.weight = trunc_normal(key, (out_dim, in_dim))

    def __call__(self, x: Float[Array, "b d"]) -> Float[Array, "b k"]:
        v = self.weight.astype(jnp.float32)
        w = v * jax.lax.rsqrt(jnp.sum(jnp.square(v), axis=1, keepdims=True))
        return x.astype(jnp.float32) @ w.T


class DINOHead(eqx.Module):
    """DINO's projection head (see the module docstring). ``out_dim`` K is 65536 in DINO and the study;
    ``hidden_dim`` 2048 and ``bottleneck_dim`` 256 are DINO's defaults. ``last_layer`` is what DINO freezes during
    the first epoch."""

    mlp: MLPHead
    last_layer: WeightNormLinear

    def __init__(
        self,
        in_dim: int,
        out_dim: int = 65_536,
        *,
        key: PRNGKeyArray,
        hidden_dim: int = 2048,
        bottleneck_dim: int = 256,
        num_layers: int = 3,
    ):
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"num_layers={num_layers!r}: expected a positive int")
        k_mlp, k_last = jr.split(key)
        hidden = (hidden_dim,) * (num_layers - 1)
        self.mlp = MLPHead(in_dim, hidden, bottleneck_dim, key=k_mlp, norm="none", activation="gelu")
        self.last_layer = WeightNormLinear(bottleneck_dim, out_dim, key=k_last)

    def __call__(self, x: Float[Array, "b d"]) -> Float[Array, "b k"]:
        z = self.mlp(x)
        # F.normalize(x, dim=-1, p=2): x / max(|x|, 1e-12).
        z = z / jnp.maximum(jnp.linalg.norm(z, axis=-1, keepdims=True), 1e-12)
        return self.last_layer(z)
