"""The contract between a pre-training method and the code that trains, measures and exports it.

A method is a small, static description (hyperparameters only, no arrays). Every method is built the same way,
``Method(backbone=vitcore.get_config(...), total_steps=..., **hyperparameters)``, and answers everything outside
code needs through this protocol (no caller asks which method it has). Required (abstract):

- ``init(*, key) -> (trainable, state)``: the trainable modules (one Equinox module) and the non-trainable state
  (EMA teacher, DINO centre, ...; any pytree, ``{}`` when there is none);
- ``views(batch, *, step, key) -> views``: the augmented views, on device (fixed output shapes);
- ``loss(trainable, state, views, *, step, key) -> (loss, aux)``: scalar float32 loss; ``aux["metrics"]`` holds
  scalar metrics to log, the rest is what ``update_state`` needs;
- ``encoder(trainable) -> vitcore.AbstractBackbone``: the backbone exported for transfer;
- ``analytic_macs(batch_size) -> float``: the closed-form multiply-accumulates of one training step.

With defaults (override when the method needs more):

=================================================  =============================================================
hook                                               default
=================================================  =============================================================
``prepare_batch(batch) -> dict[str, np.ndarray]``  ``batch_spec``'s entries of the host batch, as numpy arrays
``batch_spec(batch_size)``                         ``{"image": [b, h, w, c] float32}`` at the backbone's size
``adjust_grads(trainable, grads, *, step)``        ``grads`` unchanged
``post_update(trainable, *, step)``                ``trainable`` unchanged
``update_state(trainable, state, aux, *, step)``   ``state`` unchanged
``weight_decay_mask(trainable)``                   ``vitcore.weight_decay_mask``: matmul weights decay; biases,
                                                   norms, tokens and position embeddings do not
``final_layers(trainable)``                        ``()``: the method's output linear layers, which adaptive
                                                   gradient clipping leaves out (``OptimConfig.agc``)
``dataset_fields(dataset_dir)`` (classmethod)      ``{}``: no field depends on the dataset
``hyperparameter_names()`` (classmethod)           the dataclass fields after ``backbone`` and ``total_steps``
``image_size``                                     the backbone's (square) image size
=================================================  =============================================================

The engine runs ``prepare_batch`` on every host batch (numpy, outside jit), then one jitted step::

    views = method.views(batch, step=step, key=k_aug)
    (loss, aux), grads = value_and_grad(method.loss, has_aux=True)(trainable, state, views, step=step, key=k_loss)
    grads = method.adjust_grads(trainable, grads, step=step)
    updates, opt_state = optimizer.update(grads, opt_state, trainable)
    trainable = method.post_update(apply_updates(trainable, updates), step=step)
    state = method.update_state(trainable, state, aux, step=step)

At each evaluation and at the end of pre-training the engine runs this same step on a fixed held-out set
(`sslmethods.pretrain.heldout`), on a throw-away copy of the state: its ``loss`` is the run's held-out upstream
loss, and an ``aux["metrics"]["accuracy"]`` (supervised: top-1) its held-out upstream accuracy.

Everything that changes with the step (EMA momentum, teacher temperature, ...) is a schedule evaluated from the
``step`` argument, which the engine takes from the optimizer's step counter, so a resumed run is exact.

The run length is data too: inside the engine's step, ``self.total_steps`` is an int32 scalar argument of the
compiled program (`with_run_length`), so runs that differ only in length share one program. Hooks use it with
``jnp`` operations (the functions of `sslmethods.blocks.schedules` take it), never as a Python int (``min(n,
self.total_steps)``, ``range``); a method that needs a Python int declares the field static again
(``total_steps: int = eqx.field(static=True, kw_only=True)``) and then compiles one program per run length.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import vitcore
from jaxtyping import Array, Float, Int, PRNGKeyArray

from ..blocks.backbones import BackboneConfig, check_backbone, check_method_backbone, square_image_size

Batch = dict[str, Array]
"""Keys a step may receive: ``image`` [b h w c] float32 in [0, 1]; optionally ``label`` [b] int32,
``labels`` [b 8] int32 padded with -1, ``caption_ids`` [b L] int32 and ``caption_mask`` [b L] bool."""

Metrics = dict[str, Float[Array, ""]]

_PROTOCOL_FIELDS = ("backbone", "total_steps")


def _is_static_field(cls: type, name: str) -> bool:
    """Whether ``cls`` declares field ``name`` static (``eqx.field(static=True)``): structure, not a leaf."""
    return any(f.name == name and f.metadata.get("static", False) for f in dataclasses.fields(cls))


def _kind(dtype: np.dtype) -> str:
    """bool, int (signed or not) or float: what ``prepare_batch`` may cast within."""
    return "i" if np.dtype(dtype).kind == "u" else np.dtype(dtype).kind


class AbstractMethod(eqx.Module):
    """A pre-training method. Concrete methods are final Equinox modules holding only static hyperparameters.

    ``backbone``: the config of the vitcore backbone the method trains, of any family (``vitcore.ViTConfig``,
    ``vitcore.NFNetConfig``; a method may turn it into its own flavour, e.g. MAE's sin-cos ViT, and builds it
    with ``vitcore.build``). A method that needs a ViT says why in ``vit_only`` and refuses other families here.
    ``total_steps``: the run length, which step schedules (EMA, temperatures) are fitted to; a Python int here,
    an int32 scalar inside the engine's compiled step (`with_run_length`). Both are keyword-only and validated
    here, so every method takes them the same way.
    """

    name: eqx.AbstractClassVar[str]
    """Registry name: one of ``supervised``, ``clip``, ``simclr``, ``byol``, ``dino``, ``mae`` (or a user's)."""

    vit_only: ClassVar[str | None] = None
    """Why the method needs a ViT backbone (e.g. it masks patch tokens), or None: any vitcore family works."""

    backbone: BackboneConfig = eqx.field(static=True, kw_only=True)
    # Not static: a pytree leaf, so that the compiled step can put the run length in as data (with_run_length).
    total_steps: int | Int[Array, ""] = eqx.field(kw_only=True)

    def __post_init__(self) -> None:
        # Runs before any subclass's __check_init__ (which may read the backbone), so those only validate their
        # own fields; __check_init__ repeats the check for subclasses that write their own __init__.
        self._check_protocol_fields()

    def __check_init__(self) -> None:
        self._check_protocol_fields()

    def _check_protocol_fields(self) -> None:
        check_backbone(self.backbone)
        check_method_backbone(self.name, self.vit_only, self.backbone)
        if type(self.total_steps) is not int or self.total_steps < 1:
            raise ValueError(f"total_steps={self.total_steps!r}; expected a positive int")

    def with_run_length(self, total_steps: Int[Array, ""]) -> AbstractMethod:
        """This method with ``total_steps`` replaced by an int32 scalar array (traced inside a compiled step):
        what the engine's step (`step.make_run_step_fn`) calls, so that the hooks' schedules read the run length
        as data. A method whose class declares ``total_steps`` static is returned as it is (its schedules keep
        their Python int: one program per run length)."""
        if not self.run_length_is_data:
            return self
        return eqx.tree_at(lambda m: m.total_steps, self, total_steps)

    @property
    def run_length_is_data(self) -> bool:
        """Whether the compiled step gives this method its run length as data (`with_run_length`): True unless
        the class declares ``total_steps`` static."""
        return not _is_static_field(type(self), "total_steps")

    # ------------------------------------------------------------------------------------------------ required
    @abc.abstractmethod
    def init(self, *, key: PRNGKeyArray) -> tuple[eqx.Module, Any]:
        """Returns ``(trainable, state)``: all trainable parameters as one module and the non-trainable pytree."""

    @abc.abstractmethod
    def views(self, batch: Batch, *, step: Int[Array, ""], key: PRNGKeyArray) -> Batch:
        """Augments a prepared batch on device (fixed output shapes). Non-image entries are passed on as needed."""

    @abc.abstractmethod
    def loss(
        self, trainable: eqx.Module, state: Any, views: Batch, *, step: Int[Array, ""], key: PRNGKeyArray
    ) -> tuple[Float[Array, ""], dict[str, Any]]:
        """Scalar float32 loss and auxiliary outputs. ``aux["metrics"]`` holds scalar metrics to log."""

    @abc.abstractmethod
    def encoder(self, trainable: eqx.Module) -> eqx.Module:
        """The backbone to export for transfer and probing (a ``vitcore.AbstractBackbone`` for the built-in
        methods; a sub-module of ``trainable``, so that a pre-trained encoder can be loaded in its place)."""

    @abc.abstractmethod
    def analytic_macs(self, batch_size: int) -> float:
        """Closed-form multiply-accumulates of one training step at ``batch_size`` examples (forward, backward and
        teacher work of the backbones, from ``flopmeter``'s counts; heads and the optimizer may be left out).
        FLOPs are twice this. A cross-check for the measured step (``sslmethods.costs.step_cost``)."""

    # ------------------------------------------------------------------------------------------ with defaults
    @property
    def image_size(self) -> int:
        """The (square) input size of the backbone: the size of the host images and of the global views."""
        return square_image_size(self.backbone)

    def batch_spec(self, batch_size: int) -> dict[str, jax.ShapeDtypeStruct]:
        """What ``prepare_batch`` returns for ``batch_size`` examples, as ``jax.ShapeDtypeStruct`` (for abstract
        FLOP measurement and sharding plans). Default: the image at the backbone's size, float32."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r}; expected a positive int")
        h, w = vitcore.image_hw(self.backbone.image_size)
        return {"image": jax.ShapeDtypeStruct((batch_size, h, w, self.backbone.in_channels), jnp.float32)}

    def prepare_batch(self, batch: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Host-side (numpy, outside jit) conversion of a data-pipeline batch into the arrays the step takes.

        The engine calls it on every host batch before the batch goes to the devices; it returns numeric numpy
        arrays only, with the keys, shapes and dtypes of ``batch_spec`` (for the batch's own size). The default
        takes ``batch_spec``'s entries from ``batch`` (dropping the rest, e.g. ``caption`` strings or labels the
        method does not use) and casts them to the spec's dtype within the same kind (int64 -> int32); a missing
        entry, another shape or another kind (e.g. uint8 images for float32) is a ValueError. Override it to
        compute entries: CLIP tokenises captions (or pseudo-captions written from the labels) here.
        """
        first = next(iter(batch.values()), None)
        size = np.shape(first)[0] if np.ndim(first) else 0
        spec = self.batch_spec(size) if size else {}
        if not spec or any(key not in batch for key in spec):
            expected = sorted(self.batch_spec(1))
            raise ValueError(f"batch has keys {sorted(batch)} (batch size {size}); {type(self).__name__} needs "
                             f"{expected} with a leading batch axis")
        out = {}
        for key, struct in spec.items():
            array = np.asarray(batch[key])
            if array.shape != struct.shape or _kind(array.dtype) != _kind(struct.dtype):
                raise ValueError(f"batch[{key!r}] has shape {array.shape} and dtype {array.dtype}; expected "
                                 f"{struct.shape} {struct.dtype} (batch_spec)")
            out[key] = array.astype(struct.dtype, copy=False)
        return out

    def adjust_grads(self, trainable: eqx.Module, grads: eqx.Module, *, step: Int[Array, ""]) -> eqx.Module:
        """Hook between backward and optimizer, e.g. DINO zeroes its last layer's gradients in the first epoch.

        The default returns ``grads`` unchanged.
        """
        del trainable, step
        return grads

    def post_update(self, trainable: eqx.Module, *, step: Int[Array, ""]) -> eqx.Module:
        """Hook right after the optimizer update, e.g. CLIP clamps its logit scale to ``[0, ln 100]``.

        The default returns ``trainable`` unchanged.
        """
        del step
        return trainable

    def update_state(self, trainable: eqx.Module, state: Any, aux: dict[str, Any], *, step: Int[Array, ""]) -> Any:
        """The non-trainable state after an optimizer step (EMA teacher, centre). The default returns ``state``."""
        del trainable, aux, step
        return state

    def weight_decay_mask(self, trainable: eqx.Module) -> Any:
        """Pytree of bools matching ``eqx.filter(trainable, eqx.is_array)``: True where weight decay applies.

        The default is the backbones' rule (``vitcore.weight_decay_mask``): parameters named ``weight`` (matmuls,
        also in heads) decay; biases, norms, class/mask tokens, position embeddings and scalars do not.
        """
        return vitcore.weight_decay_mask(trainable)

    def final_layers(self, trainable: eqx.Module) -> tuple[eqx.Module, ...]:
        """The method's output linear layers (sub-modules of ``trainable``): adaptive gradient clipping
        (``OptimConfig.agc``) leaves them out, as Brock et al. 2021 leave out the classifier. Default: none."""
        del trainable
        return ()

    @classmethod
    def dataset_fields(cls, dataset_dir: str | Path) -> dict[str, Any]:
        """Constructor fields that depend on the pre-training dataset at ``dataset_dir`` (e.g. the class count of
        supervised training). ``recipes.dataset_overrides`` calls it; the default is ``{}``."""
        del dataset_dir
        return {}

    @classmethod
    def hyperparameter_names(cls) -> tuple[str, ...]:
        """The fields a caller may override (``recipes.build_method(method_overrides=...)``, tools' flags): every
        dataclass field except ``backbone`` and ``total_steps``."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.name not in _PROTOCOL_FIELDS)
