"""Layer-wise transfer: a linear segmentation probe on each layer's features of a frozen backbone.

Abnar et al. 2021 ("Exploring the Limits of Large Scale Pre-training") link the saturation of transfer to how
representations evolve through the layers: the best layer for a downstream task is not always the last, and it
moves as upstream accuracy grows. `probe_layers` measures that for semantic segmentation: for every index of the
backbone's ``feature_info`` (a ViT's blocks, an NFNet's stages), a linear classifier on the frozen feature map
(``feature_maps``) predicts each cell's classes; its logits are upsampled bilinearly to the mask (as the FCN head)
and scored by mIoU. Every layer gets the same protocol, so the scores compare across layers, methods and budgets.

Which layer is "best" is chosen on data the final number never sees: a validation split carved from the
downstream *training* examples (`carve_validation`: a fixed permutation, seed 0, its first ``val_fraction``; the
probes train on the rest). `choose_layer` picks the layer with the highest validation mIoU, and that layer's *test*
mIoU is the result; picking the best test score instead would report the maximum of 12 noisy numbers for a ViT
but of 4 for an NFNet, an optimism that differs by family.

The probe: features standardised per channel (mean/std over the training cells, float64), a softmax regression
trained by full-batch Adam on every cell's class distribution (the mask's one-hots averaged over the pixels the
cell covers, ignored pixels left out), ``steps`` steps at ``lr``. Training at the feature resolution keeps it
cheap; evaluation is at full resolution::

    scores = probe_layers(encoder, train_images, train_masks, eval_images, eval_masks, num_classes=10,
                          key=jax.random.key(0))   # LayerScore(index, ..., miou, aacc, val_miou, val_aacc)
    chosen = choose_layer(scores)                  # highest val_miou; report chosen.miou (test)
"""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import vitcore
from jaxtyping import Array, Float, Int, PRNGKeyArray

from ..segmentation.data import SegmentationData, segmentation_loader
from ..segmentation.metrics import confusion_matrix, miou

__all__ = ["VAL_FRACTION", "LayerScore", "LinearProbe", "ProbeConfig", "carve_validation", "cell_targets",
           "choose_layer", "fit_probe", "layer_features", "probe_dataset", "probe_layers", "probe_logits",
           "segmentation_arrays"]

VAL_FRACTION = 0.2
_VAL_SEED = 0  # the carving's permutation: the same for every run, probe seed and encoder


@dataclasses.dataclass(frozen=True)
class ProbeConfig:
    """The probe's training: ``steps`` of full-batch Adam at ``lr`` with decoupled ``weight_decay``; features
    are extracted ``batch_size`` images at a time; ``ignore_index`` marks unlabelled pixels."""

    steps: int = 300
    lr: float = 0.05
    weight_decay: float = 1e-4
    batch_size: int = 64
    ignore_index: int = 255

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ProbeConfig.{name}={value!r}: expected a positive int")
        if not self.lr > 0 or not self.weight_decay >= 0:
            raise ValueError(f"ProbeConfig lr={self.lr!r}, weight_decay={self.weight_decay!r}: expected lr > 0 "
                             "and weight_decay >= 0")


@dataclasses.dataclass(frozen=True)
class LayerScore:
    """The probe of one layer: its ``feature_info`` entry (``index``, ``name``, ``stride``, ``channels``), its
    relative ``depth`` ((index + 1) / number of layers), the test (eval) split's ``miou`` and ``aacc`` and the
    validation split's ``val_miou`` and ``val_aacc`` (fractions; None in results written before the split)."""

    index: int
    name: str
    stride: int
    channels: int
    depth: float
    miou: float
    aacc: float
    val_miou: float | None = None
    val_aacc: float | None = None


def carve_validation(n: int, fraction: float = VAL_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """``(train, validation)`` indices of ``n`` training examples: the first ``round(fraction * n)`` (at least
    1, at most n - 1) of a fixed permutation (seed 0) are validation, the rest train, both sorted."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"val_fraction={fraction!r}: expected 0 < fraction < 1")
    if n < 2:
        raise ValueError(f"{n} training example(s): need 2 to carve a validation split")
    order = np.random.default_rng(_VAL_SEED).permutation(n)
    size = min(max(round(fraction * n), 1), n - 1)
    return np.sort(order[size:]), np.sort(order[:size])


def choose_layer(scores: list[LayerScore]) -> LayerScore:
    """The layer with the highest validation mIoU (the shallowest on a tie); its ``miou`` is the test score to
    report. ValueError when a layer has no validation score."""
    if not scores or any(s.val_miou is None for s in scores):
        raise ValueError("choose_layer needs every layer's val_miou (probe_layers with a validation split)")
    return max(scores, key=lambda s: (s.val_miou, -s.index))


class LinearProbe(eqx.Module):
    """``softmax(((x - mean) / std) @ weight + bias)`` per feature cell."""

    mean: Float[Array, " c"]
    std: Float[Array, " c"]
    weight: Float[Array, "c k"]
    bias: Float[Array, " k"]


@eqx.filter_jit
def _maps(encoder: vitcore.AbstractBackbone, images: Float[Array, "b h w c"], indices: tuple[int, ...]
          ) -> tuple[Array, ...]:
    return tuple(m.astype(jnp.float32) for m in encoder.feature_maps(images, indices))


def layer_features(encoder: vitcore.AbstractBackbone, images: Float[np.ndarray, "n h w c"], *,
                   batch_size: int = 64) -> list[np.ndarray]:
    """Every layer's feature map of ``images`` (one forward pass per batch, all ``feature_info`` indices), as
    float32 numpy [n, h / stride, w / stride, channels] per layer. The last batch is padded (one compilation)."""
    indices = tuple(range(len(encoder.feature_info)))
    n = images.shape[0]
    out: list[list[np.ndarray]] = [[] for _ in indices]
    for start in range(0, n, batch_size):
        chunk = np.asarray(images[start:start + batch_size], np.float32)
        pad = batch_size - chunk.shape[0] if n > batch_size else 0
        if pad:
            chunk = np.concatenate([chunk, np.zeros((pad, *chunk.shape[1:]), np.float32)])
        for i, feature in enumerate(_maps(encoder, jnp.asarray(chunk), indices)):
            out[i].append(np.asarray(feature)[: chunk.shape[0] - pad])
    return [np.concatenate(parts) for parts in out]


def cell_targets(masks: Int[np.ndarray, "n H W"], grid: tuple[int, int], num_classes: int, *,
                 ignore_index: int = 255) -> tuple[np.ndarray, np.ndarray]:
    """Per feature cell: the class distribution of the pixels it covers ([n, gh, gw, k], ignored pixels left
    out) and the fraction of its pixels that are labelled ([n, gh, gw]). The mask's size must be a multiple of
    the grid's."""
    n, height, width = masks.shape
    gh, gw = grid
    if height % gh or width % gw:
        raise ValueError(f"masks of {height}x{width} pixels do not tile a {gh}x{gw} feature grid")
    valid = masks != ignore_index
    one_hot = (masks[..., None] == np.arange(num_classes)) & valid[..., None]
    cells = one_hot.reshape(n, gh, height // gh, gw, width // gw, num_classes).sum(axis=(2, 4), dtype=np.float64)
    labelled = cells.sum(-1)
    dist = np.divide(cells, labelled[..., None], out=np.zeros_like(cells), where=labelled[..., None] > 0)
    return dist.astype(np.float32), (labelled / ((height // gh) * (width // gw))).astype(np.float32)


def fit_probe(features: Float[np.ndarray, "n h w c"], masks: Int[np.ndarray, "n H W"], num_classes: int, *,
              key: PRNGKeyArray, config: ProbeConfig = ProbeConfig()) -> LinearProbe:
    """A `LinearProbe` trained on ``features`` (frozen) to predict each cell's classes (module docstring)."""
    n, gh, gw, c = features.shape
    targets, weights = cell_targets(masks, (gh, gw), num_classes, ignore_index=config.ignore_index)
    x = features.reshape(-1, c).astype(np.float64)
    mean, std = x.mean(0), x.std(0)
    std = np.where(std > 1e-6, std, 1.0)
    x = jnp.asarray(((x - mean) / std).astype(np.float32))
    y, w = jnp.asarray(targets.reshape(-1, num_classes)), jnp.asarray(weights.reshape(-1))
    params = {"weight": 0.01 * jax.random.normal(key, (c, num_classes), jnp.float32),
              "bias": jnp.zeros((num_classes,), jnp.float32)}
    tx = optax.adamw(config.lr, weight_decay=config.weight_decay)

    def loss(p):
        logp = jax.nn.log_softmax(x @ p["weight"] + p["bias"])
        return -jnp.sum(w * jnp.sum(y * logp, -1)) / jnp.maximum(jnp.sum(w), 1.0)

    @jax.jit
    def train(p):
        def step(carry, _):
            p, opt = carry
            updates, opt = tx.update(jax.grad(loss)(p), opt, p)
            return (optax.apply_updates(p, updates), opt), None

        with jax.numpy_dtype_promotion("standard"):  # optax's schedules mix int counts with float constants
            (p, _), _ = jax.lax.scan(step, (p, tx.init(p)), None, length=config.steps)
        return p

    params = train(params)
    return LinearProbe(jnp.asarray(mean, jnp.float32), jnp.asarray(std, jnp.float32), params["weight"],
                       params["bias"])


@eqx.filter_jit
def probe_logits(probe: LinearProbe, features: Float[Array, "b h w c"], size: tuple[int, int]
                 ) -> Float[Array, "b H W k"]:
    """The probe's logits upsampled bilinearly to ``size`` (half-pixel centres, as the FCN head's)."""
    logits = ((features - probe.mean) / probe.std) @ probe.weight + probe.bias
    return jax.image.resize(logits, (logits.shape[0], *size, logits.shape[-1]), method="bilinear")


def _score(probe: LinearProbe, features: np.ndarray, masks: np.ndarray, num_classes: int,
           config: ProbeConfig) -> dict[str, float]:
    total = np.zeros((num_classes, num_classes), np.int64)
    for start in range(0, features.shape[0], config.batch_size):
        logits = probe_logits(probe, jnp.asarray(features[start:start + config.batch_size]), masks.shape[1:])
        pred = jnp.argmax(logits, axis=-1)
        total += np.asarray(confusion_matrix(pred, jnp.asarray(masks[start:start + config.batch_size]),
                                             num_classes, config.ignore_index), np.int64)
    out = miou(total)
    return {"miou": float(out["miou"]), "aacc": float(out["aacc"])}


def probe_layers(encoder: vitcore.AbstractBackbone, train_images: np.ndarray, train_masks: np.ndarray,
                 eval_images: np.ndarray, eval_masks: np.ndarray, num_classes: int, *, key: PRNGKeyArray,
                 config: ProbeConfig = ProbeConfig(), val_fraction: float = VAL_FRACTION) -> list[LayerScore]:
    """One `LayerScore` per ``feature_info`` index of the frozen ``encoder`` (adapted to the images' size with
    ``with_image_size``): a probe fitted on the training images and masks less the validation split
    (`carve_validation`), scored on that split (``val_miou``) and on the eval ones (``miou``)."""
    size = train_images.shape[1:3]
    if eval_images.shape[1:3] != size or train_masks.shape[1:] != size or eval_masks.shape[1:] != size:
        raise ValueError(f"train/eval images {train_images.shape[1:3]}/{eval_images.shape[1:3]} and masks "
                         f"{train_masks.shape[1:]}/{eval_masks.shape[1:]}: expected one image size")
    fit_idx, val_idx = carve_validation(len(train_images), val_fraction)
    encoder = encoder.with_image_size(tuple(size))
    train_features = layer_features(encoder, train_images, batch_size=config.batch_size)
    eval_features = layer_features(encoder, eval_images, batch_size=config.batch_size)
    info = encoder.feature_info
    scores = []
    for i, (train_f, eval_f) in enumerate(zip(train_features, eval_features, strict=True)):
        probe = fit_probe(train_f[fit_idx], train_masks[fit_idx], num_classes, key=jax.random.fold_in(key, i),
                          config=config)
        val = _score(probe, train_f[val_idx], train_masks[val_idx], num_classes, config)
        test = _score(probe, eval_f, eval_masks, num_classes, config)
        scores.append(LayerScore(i, info[i].name, info[i].stride, info[i].channels, (i + 1) / len(info),
                                 test["miou"], test["aacc"], val["miou"], val["aacc"]))
    return scores


def segmentation_arrays(directory: str, split: str, *, num_classes: int, image_size: int, examples: int
                        ) -> tuple[np.ndarray, np.ndarray]:
    """The first ``examples`` images and masks of ``split`` (fewer if the split is smaller), as the evaluation
    pipeline serves them (short side resized to ``image_size``, centre crop; no augmentation)."""
    images, masks, count = [], [], 0
    loader = segmentation_loader(SegmentationData(directory, batch_size=min(examples, 64), num_classes=num_classes,
                                                  split=split, train=False, crop_size=image_size, shard_index=0,
                                                  shard_count=1))
    for batch in loader:
        images.append(batch["image"])
        masks.append(batch["mask"])
        count += len(batch["image"])
        if count >= examples:
            break
    return np.concatenate(images)[:examples], np.concatenate(masks)[:examples]


def probe_dataset(encoder: vitcore.AbstractBackbone, directory: str, *, num_classes: int, image_size: int,
                  train_split: str, eval_split: str, train_examples: int, eval_examples: int, key: PRNGKeyArray,
                  config: ProbeConfig = ProbeConfig(), val_fraction: float = VAL_FRACTION) -> list[LayerScore]:
    """`probe_layers` on a segmentation dataset (a TFDS directory, `segtransfer.segmentation.data`): probes fitted on
    the first ``train_examples`` of ``train_split`` less the validation split carved from them, scored on that split and
    on the first ``eval_examples`` of ``eval_split``."""
    train = segmentation_arrays(directory, train_split, num_classes=num_classes, image_size=image_size,
                                examples=train_examples)
    held = segmentation_arrays(directory, eval_split, num_classes=num_classes, image_size=image_size,
                               examples=eval_examples)
    return probe_layers(encoder, *train, *held, num_classes, key=key, config=config, val_fraction=val_fraction)
