"""`from_timm`: load a timm VisionTransformer state dict (numpy arrays) into a vitcore `ViT`."""

import dataclasses
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np

from .config import ViTConfig
from .normalisation import IMAGENET_MEAN, IMAGENET_STD
from .presets import VIT_PRESETS, get_config
from .vit import ViT


def _timm_key(path) -> tuple[str, int | None]:
    """Our leaf path -> (timm key with `{}` where the block index goes, None) or (key, block index)."""
    parts, block = [], None
    for entry in path:
        if isinstance(entry, jax.tree_util.GetAttrKey):
            if entry.name == "layers":  # BlockStack.layers: timm has `blocks.N.` directly
                continue
            parts.append(entry.name)
        elif isinstance(entry, jax.tree_util.SequenceKey):
            block = entry.idx
            parts.append(str(entry.idx))
        else:
            raise TypeError(f"unexpected path entry {entry!r}")
    if parts[0] == "patch_embed":
        parts.insert(1, "proj")
    if parts[-1] == "scale":  # our LayerNorm's scale is torch's LayerNorm weight
        parts[-1] = "weight"
    return ".".join(parts), block


def _fetch(state_dict: dict[str, np.ndarray], name: str, shape: tuple[int, ...]) -> np.ndarray:
    if name not in state_dict:
        raise KeyError(f"from_timm: state_dict has no key {name!r} (needed for shape {shape})")
    value = np.asarray(state_dict[name])
    if (
        value.size == int(np.prod(shape))
        and value.shape != shape
        and value.shape[0] == 1
        and (name in ("cls_token", "pos_embed"))
    ):
        value = value.reshape(shape)  # timm keeps a leading batch axis of 1: [1, 1, d], [1, n, d]
    if value.shape != shape:
        raise ValueError(f"from_timm: state_dict[{name!r}] has shape {value.shape}; expected {shape}")
    return value.astype(np.float32)


def from_timm(
    preset: str,
    state_dict: dict[str, np.ndarray],
    *,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    **overrides,
) -> ViT:
    """A `ViT` of `preset` (plus `ViTConfig` overrides) holding the weights of a timm VisionTransformer.

    `mean`/`std`: the checkpoint's input normalisation (timm's ``pretrained_cfg["mean"]`` / ``["std"]``, or
    ``timm.data.resolve_data_config``), ImageNet's by default; many timm ViTs (e.g. the ``augreg`` ones) use 0.5 /
    0.5 instead. The model applies it to its [0, 1] input, so ``model(pixels)`` equals timm's model on timm's
    preprocessing of the same pixels.

    `state_dict` maps timm names to numpy arrays (from `safetensors.numpy.load_file` or a `.pth` converted
    with
    `{k: v.numpy()}`): cls_token, pos_embed, patch_embed.proj.{weight (OIHW), bias},
    blocks.N.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}.{weight, bias}, norm.{weight, bias},
    head.{weight, bias}. `num_classes` defaults to the head's size (0 if the dict has no head). Every shape is
    checked and a mismatch names the key; keys the model does not use raise too (e.g. a wrong preset).
    """
    if "num_classes" not in overrides:
        head = state_dict.get("head.weight")
        overrides["num_classes"] = 0 if head is None else int(np.shape(head)[0])
    config = get_config(preset, mean=tuple(map(float, mean)), std=tuple(map(float, std)), **overrides)
    if not isinstance(config, ViTConfig):
        raise ValueError(
            f"preset={preset!r} has a {type(config).__name__}, not a ViTConfig; from_timm loads timm VisionTransformer "
            f"weights into ViT presets only, one of {sorted(VIT_PRESETS)}"
        )
    if config.pos_embed != "learned":
        raise ValueError(f"from_timm needs pos_embed='learned', got {config.pos_embed!r}")
    # Unrolled abstract model: its leaf paths name the timm keys; stacked (scanned) weights are built after.
    flat_config = dataclasses.replace(config, scan_layers=False)
    abstract = eqx.filter_eval_shape(ViT, flat_config, key=jr.key(0))
    leaves_with_path, treedef = jax.tree_util.tree_flatten_with_path(abstract)
    used, leaves = set(), []
    for path, leaf in leaves_with_path:
        name, _ = _timm_key(path)
        leaves.append(jnp.asarray(_fetch(state_dict, name, tuple(leaf.shape))))
        used.add(name)
    unused = sorted(k for k in state_dict if k not in used)
    if unused:
        raise ValueError(
            f"from_timm: state_dict keys not used by preset {preset!r}: {unused[:8]}"
            f"{' ...' if len(unused) > 8 else ''}"
        )
    model = jax.tree_util.tree_unflatten(treedef, leaves)
    if config.scan_layers:
        model = _stack_blocks(model, config)
    return model


def _stack_blocks(model: ViT, config) -> ViT:
    """The same weights in a `scan_layers=True` model (block weights stacked on a leading axis)."""
    stacked_layers = jax.tree.map(lambda *xs: jnp.stack(xs), *model.blocks.layers)
    structure = jax.tree.structure(eqx.filter_eval_shape(ViT, config, key=jr.key(0)))
    model = eqx.tree_at(lambda m: m.blocks.layers, model, stacked_layers)
    return jax.tree.unflatten(structure, jax.tree.leaves(model))
