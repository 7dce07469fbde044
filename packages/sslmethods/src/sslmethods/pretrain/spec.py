"""Every option of a pre-training run, declared once: `PretrainSpec`, and the three things done with one.

`PretrainSpec` is what ``flopwise-pretrain`` parses (its flags are generated from the fields:
`flopcli.add_spec_flags`) and what a sweep's pre-training stage builds for each run (`flopstudy.stages.pretrain`):
the method (a registered name or ``package.module:ClassName``), backbone preset, dataset, optimizer preset, the
``section.field=value`` overrides (parsed once, at construction, into typed values: ``spec.overrides``), length
in steps or as a FLOP budget (``flops``, which becomes steps once the step is measured: `flop_budget`), global
batch, image size, seed, kNN monitor sizes, a first stage to start from (``init_from``) and
how the run is executed (cadences, decoding workers, sharding, NaN policy, CO2 inputs; `HOW_FIELDS`: none of
these changes what is computed).

``build(dataset_dir)`` is the configured ``(method, OptimConfig)`` (no arrays), ``measure(dataset_dir)`` the
FLOPs of one compiled step on abstract inputs, ``train(out_dir, dataset_dir=...)`` the run through
`sslmethods.pretrain.trainer`, which leaves ``command.txt`` (`COMMAND_FILE`) in the run directory: the
``flopwise-pretrain`` command that reruns it with every option spelled out. With a FLOP budget, ``train`` measures
the step first (`measure`), trains ``steps_for_flops(flops, FLOPs per step)`` steps and records the budget and the
measured FLOPs per step in ``config.json`` (``run.flops``, ``run.flops_per_step``); the command keeps ``--flops``
(what was asked for, so ``read_pretrain`` gives back the same spec), and a resume takes the recorded FLOPs per
step instead of measuring again, so the run's length never changes under it (another backend or device count
may count a step differently).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shlex
from pathlib import Path
from typing import Any

import equinox as eqx
import flopcli
import flopmeter
import jax
import runloop
import vitcore

from ..methods.method import AbstractMethod
from ..methods.registry import get_method
from . import overrides as override_syntax
from . import recipes, step, train_state, trainer
from .data import PretrainData, pretrain_loader
from .flop_budget import MEASURE_STEPS, steps_for_flops
from .heldout import heldout_set
from .init_from import load_stage_one
from .optim import OptimConfig
from .presets import PRESET_NAMES

__all__ = ["COMMAND", "COMMAND_FILE", "HOW_FIELDS", "PretrainSpec", "encoder_params", "method_name"]

COMMAND = "flopwise-pretrain"
COMMAND_FILE = "command.txt"  # in a run directory: the command that reruns it
# Fields that say how a run is executed or reported, never what it computes.
_ENGINE_NAMES = runloop.OptionNames()  # the engine's own spelling of its options, for error hints
HOW_FIELDS = ("checkpoint_every", "log_every", "eval_every", "workers", "fsdp", "skip_nonfinite", "hardware",
              "watts", "tensorboard", "print_progress")


def method_name(text: str) -> str:
    """``text`` if it names a method (`registry.get_method`): the flag type of ``--method``, checked while
    parsing; argparse reports the message."""
    try:
        get_method(text)
    except (ValueError, TypeError) as error:  # chained: --debug shows the user's module failing
        raise argparse.ArgumentTypeError(str(error)) from error
    return text


_field = flopcli.spec_field


@dataclasses.dataclass(frozen=True)
class PretrainSpec:
    """One pre-training run: every setting, checked at construction (a spec that exists is valid; errors start
    with the field's name). Defaults: the first example of ``flopwise-pretrain --help``."""

    method: str = _field("dino", "supervised, clip, simclr, byol, dino, mae or the import path of an "
                                 "AbstractMethod subclass", method_name, metavar="NAME|MODULE:CLASS")
    model: str = _field("vit-test", "backbone preset (vitcore.PRESETS)")
    dataset: str = _field("fmnist_objects", "fmnist_objects, fmnist_scenes, a built name or a TFDS dir")
    steps: int | None = _field(50, "length in optimizer steps; may grow on --resume (the schedules are refitted); "
                                   "none: given by --flops", flopcli.positive_int)
    flops: float | None = _field(None, "length as total pre-training FLOPs instead of --steps: steps = FLOPs / the "
                                       "measured FLOPs of one compiled step, rounded, at least 1",
                                 flopcli.positive_float)
    batch: int = _field(64, "global batch size", flopcli.positive_int)
    preset: str = _field("demo", "the method's hyperparameter and optimizer preset")
    set: tuple[str, ...] = _field((), "override any method./optim./model. field, e.g. optim.lr=1e-3 "
                                      "method.mask_ratio=0.65", metavar="SECTION.FIELD=VALUE", nargs="+")
    image_size: int | None = _field(None, "input size in pixels (none: the model preset's)", flopcli.positive_int)
    seed: int = _field(0, "seed of every random draw", flopcli.non_negative_int)
    knn_bank: int = _field(1000, "training examples in the kNN monitor's memory bank (0: no kNN monitor)",
                           flopcli.non_negative_int)
    knn_query: int = _field(500, "test examples the kNN monitor classifies", flopcli.non_negative_int)
    init_from: str | None = _field(None, "a finished run directory whose encoder the run starts from (the second "
                                         "stage of MAE pre-pretraining; the run is built on its architecture)")
    checkpoint_every: int = _field(500, "steps between checkpoints", flopcli.positive_int)
    log_every: int = _field(50, "steps between metrics.jsonl records", flopcli.positive_int)
    eval_every: int = _field(0, "kNN monitor interval (0: at the end only)", flopcli.non_negative_int)
    workers: int = _field(0, "grain decoding worker processes", flopcli.non_negative_int)
    fsdp: bool = _field(False, "shard parameters and optimizer state over devices")
    skip_nonfinite: bool = _field(False, "drop non-finite updates (at most 10 in a row)")
    hardware: str | None = _field(None, "flopmeter hardware name for the CO2 estimate")
    watts: float | None = _field(None, "watts per device for the CO2 estimate", flopcli.positive_float)
    tensorboard: bool = _field(False, "also write TensorBoard events to OUT/tensorboard")
    print_progress: bool = _field(True, "print a progress line to stderr now and then")
    # The typed overrides (`overrides.Overrides`), parsed once from ``set``, which holds them canonically.
    overrides: Any = dataclasses.field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """ValueError starting with the field's name for the first field that is wrong; canonicalises ``set``
        (sorted ``section.field=value`` as `overrides.Overrides.assignments` writes them)."""
        if self.steps is not None and self.flops is not None:
            raise ValueError(f"steps={self.steps} and flops={self.flops!r}: give the length one way only")
        if self.steps is None and self.flops is None:
            raise ValueError("steps=None: give the length in steps or as a FLOP budget (flops)")
        if self.flops is not None:
            if isinstance(self.flops, bool) or not isinstance(self.flops, int | float) or not (
                    math.isfinite(self.flops) and self.flops > 0):
                raise ValueError(f"flops={self.flops!r}: expected None or a finite number > 0")
            object.__setattr__(self, "flops", float(self.flops))  # 4e11 and 400000000000 are the same budget
        for name, low in (("steps", 1), ("batch", 1), ("seed", 0), ("knn_bank", 0), ("knn_query", 0),
                          ("checkpoint_every", 1), ("log_every", 1), ("eval_every", 0), ("workers", 0)):
            value = getattr(self, name)
            if name == "steps" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name}={value!r}: expected an int >= {low}")
        for name in ("fsdp", "skip_nonfinite", "tensorboard", "print_progress"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}={getattr(self, name)!r}: expected True or False")
        try:
            cls = get_method(self.method)  # "method='moco'; expected a registered name ..."
        except TypeError as error:  # a path naming something that is not a method: wrong value, same kind
            raise ValueError(str(error)) from error
        if self.model not in vitcore.PRESETS:
            raise ValueError(f"model={self.model!r}: expected one of {', '.join(vitcore.PRESETS)}")
        if self.preset not in PRESET_NAMES:
            raise ValueError(f"preset={self.preset!r}: expected one of {', '.join(PRESET_NAMES)}")
        if not isinstance(self.dataset, str) or not self.dataset:
            raise ValueError(f"dataset={self.dataset!r}: expected a dataset name or directory")
        if self.image_size is not None:
            if isinstance(self.image_size, bool) or not isinstance(self.image_size, int) or self.image_size < 1:
                raise ValueError(f"image_size={self.image_size!r}: expected None or an int >= 1")
            try:  # a ViT's patch size must divide it: checked on the config alone
                vitcore.get_config(self.model, image_size=self.image_size)
            except (ValueError, TypeError) as error:
                raise ValueError(f"image_size {self.image_size}: {error}") from None
        if self.watts is not None and (isinstance(self.watts, bool) or not isinstance(self.watts, int | float)
                                       or not self.watts > 0):
            raise ValueError(f"watts={self.watts!r}: expected None or a number > 0")
        if self.hardware is not None:
            try:
                flopmeter.hardware(self.hardware)
            except (ValueError, KeyError) as error:
                raise ValueError(f"hardware={self.hardware!r}: {error}") from None
        if self.init_from is not None and (not isinstance(self.init_from, str) or not self.init_from):
            raise ValueError(f"init_from={self.init_from!r}: expected None or a run directory")
        if not isinstance(self.set, tuple) or not all(isinstance(item, str) for item in self.set):
            raise ValueError(f"set={self.set!r}: expected a tuple of section.field=value strings")
        try:  # the message starts with the item: "method.foo: not a field of MAE; ..."
            typed = override_syntax.parse_overrides(self.set, cls)
        except ValueError as error:
            raise ValueError(f"set {error}") from None
        object.__setattr__(self, "set", typed.assignments())
        object.__setattr__(self, "overrides", typed)

    @property
    def total_steps(self) -> int:
        """The length the method and optimizer are built for: ``steps``, or `MEASURE_STEPS` while a FLOP budget
        is not yet resolved (the step program, and so its measured FLOPs, does not depend on it)."""
        return MEASURE_STEPS if self.steps is None else self.steps

    def with_flops_per_step(self, flops_per_step: float) -> PretrainSpec:
        """This spec with its FLOP budget resolved into steps (`flop_budget.steps_for_flops`); itself when its
        length is in steps."""
        if self.flops is None:
            return self
        return dataclasses.replace(self, steps=steps_for_flops(self.flops, flops_per_step), flops=None)

    @property
    def run_name(self) -> str:
        """``<method>-<model>-<dataset>``: the command's default run directory under ``runs/``."""
        return f"{self.method}-{self.model}-{Path(self.dataset).name}"

    def flags(self) -> list[str]:
        """The ``flopwise-pretrain`` flags of every field (`flopcli.spec_to_flags`); of the exclusive ``--steps``
        and ``--flops``, the one that is set."""
        return flopcli.spec_to_flags(self, skip=("steps",) if self.steps is None else ("flops",))

    def command(self, *, out_dir: str, data_dir: str | None = None) -> str:
        """The ``flopwise-pretrain`` command that runs this spec into ``out_dir`` (every field spelled out, so
        the command's own defaults do not matter)."""
        words = [COMMAND, "--out", out_dir, *(["--data-dir", data_dir] if data_dir else []), *self.flags()]
        return shlex.join(words)

    def build(self, dataset_dir: str | Path | None = None, *, backbone: Any = None
              ) -> tuple[AbstractMethod, OptimConfig]:
        """``(method, OptimConfig)`` of the run (no arrays are built). ``dataset_dir`` fills the dataset's fields
        (class count, class names); None keeps the method's defaults (enough to check a configuration).
        ``backbone``: the config to build on instead of the preset's; by default ``init_from``'s exported
        encoder's (its architecture), else the preset's. ``image_size`` wins over ``model.image_size``."""
        if backbone is None and self.init_from is not None:
            backbone = load_stage_one(self.init_from).config
        kwargs = self.overrides.build_kwargs()
        kwargs["method_overrides"] = recipes.dataset_overrides(self.method, dataset_dir) | kwargs["method_overrides"]
        return recipes.build_method(self.method, self.model, preset=self.preset, total_steps=self.total_steps,
                                    image_size=self.image_size, backbone=backbone, **kwargs)

    def loader(self, method: AbstractMethod, dataset_dir: str | Path) -> Any:
        """The run's training batches (an iterator), at the image size ``method``'s backbone was built for."""
        size = vitcore.image_hw(method.backbone.image_size)[0]
        return iter(pretrain_loader(PretrainData(str(dataset_dir), batch_size=self.batch, image_size=size,
                                                 seed=self.seed, worker_count=self.workers)))

    def measure(self, dataset_dir: str | Path, *, backbone: Any = None) -> dict[str, Any]:
        """FLOPs of one whole training step at the global batch, measured with `runloop.measure_step` on the
        compiled step (abstract inputs shaped like a real host batch of the dataset; nothing is trained), and
        the encoder's parameter count."""
        method, optim = self.build(dataset_dir, backbone=backbone)
        batch = method.prepare_batch(next(dataclasses.replace(self, workers=0).loader(method, dataset_dir)))
        shapes = {k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in batch.items()}
        tx, _ = trainer.build_optimizer(method, optim, self.total_steps)
        state, batch_struct = train_state.abstract_pretrain_state(method, tx, shapes)
        cost = runloop.measure_step(step.make_method_step(method, tx), state, batch_struct)
        return {"flops_per_step": float(cost.flops), "flops_per_step_per_device": float(cost.flops_per_device),
                "measured_devices": int(cost.num_devices), "macs_per_step": float(cost.macs),
                "params": encoder_params(method), "batch": self.batch,
                "compile_seconds": float(cost.compile_seconds), "backend": cost.backend, "notes": list(cost.notes),
                "source": "flopmeter.measure (compiled step, abstract inputs)"}

    def loop_config(self, *, resume_from: int | None = None,
                    option_names: runloop.OptionNames = _ENGINE_NAMES) -> runloop.LoopConfig:
        """The engine's settings of the run (``option_names``: how the caller spells the engine's options)."""
        return runloop.LoopConfig(
            steps=self.total_steps, batch_size=self.batch, checkpoint_every=self.checkpoint_every,
            log_every=self.log_every, eval_every=self.eval_every, hardware=self.hardware, watts=self.watts,
            resume_from=resume_from, param_sharding="fsdp" if self.fsdp else "replicate",
            option_names=option_names, tensorboard=self.tensorboard, print_progress=self.print_progress,
            on_nonfinite="skip" if self.skip_nonfinite else "raise")

    def run_info(self, method: AbstractMethod, dataset_dir: str | Path) -> dict[str, Any]:
        """The ``run`` record of the run's ``config.json`` (the same-run check on resume compares it)."""
        return {"method": self.method, "model": self.model, "dataset": self.dataset, "preset": self.preset,
                "image_size": vitcore.image_hw(method.backbone.image_size)[0], "dataset_dir": str(dataset_dir),
                "method_repr": repr(method), "overrides": list(self.set)}

    def train(self, out_dir: str | Path, *, dataset_dir: str | Path, resume: bool = False, data_dir: str | None = None,
              resume_from: int | None = None, option_names: runloop.OptionNames = _ENGINE_NAMES,
              method: tuple[AbstractMethod, OptimConfig] | None = None) -> runloop.PretrainSummary:
        """Pre-trains (or, with ``resume``, continues the run in ``out_dir``); returns the trainer's summary
        (``status`` "completed", also written to ``out_dir/summary.json``, or "preempted") and writes
        `COMMAND_FILE` (``data_dir``: the folder datasets are looked up in, for that command). ``method``: the
        ``build(dataset_dir)`` already made, if any (a FLOP budget's run is built again once its length is
        known). A FLOP budget is resolved first (module docstring): from the FLOPs per step ``config.json``
        recorded when resuming a run with the same budget, else measured (`measure`)."""
        run, budget = self, {}
        if self.flops is not None:
            recorded = _recorded_run(out_dir) if resume else {}
            per_step = recorded.get("flops_per_step") if recorded.get("flops") == self.flops else None
            if not isinstance(per_step, int | float) or isinstance(per_step, bool):
                per_step = self.measure(dataset_dir)["flops_per_step"]
            run, budget, method = self.with_flops_per_step(per_step), {"flops": self.flops,
                                                                       "flops_per_step": per_step}, None
        method, optim = method or run.build(dataset_dir)
        size = vitcore.image_hw(method.backbone.image_size)[0]
        knn = None if self.knn_bank == 0 else recipes.knn_splits(dataset_dir, image_size=size,
                                                                 bank_size=self.knn_bank, query_size=self.knn_query)
        cfg = trainer.TrainConfig(out_dir=str(out_dir), seed=self.seed, resume=resume, init_from=self.init_from,
                                  loop=run.loop_config(resume_from=resume_from, option_names=option_names))
        info = _as_recorded(run.run_info(method, dataset_dir), out_dir, resume) | budget
        summary, _ = trainer.train_method(method, optim, run.loader(method, dataset_dir), cfg, knn=knn,
                                          heldout=heldout_set(dataset_dir, image_size=size, batch_size=self.batch),
                                          run_info=info)
        if jax.process_index() == 0:
            command = self.command(out_dir=str(Path(out_dir).resolve()),
                                   data_dir=None if data_dir is None else str(Path(data_dir).resolve()))
            runloop.write_bytes_atomic(Path(out_dir) / COMMAND_FILE, (command + "\n").encode())
        return summary


def _recorded_run(out_dir: str | Path) -> dict[str, Any]:
    """The ``run`` record of ``out_dir/config.json`` ({} when there is none or it is unreadable: the engine's
    same-run check names a broken file)."""
    path = Path(out_dir) / runloop.run_directory.CONFIG_FILE
    try:
        recorded = json.loads(path.read_text()).get("run", {}) if path.is_file() else {}
    except (OSError, ValueError, AttributeError):
        return {}
    return recorded if isinstance(recorded, dict) else {}


def _as_recorded(info: dict[str, Any], out_dir: str | Path, resume: bool) -> dict[str, Any]:
    """``info`` without ``image_size`` when it continues a run whose ``config.json`` has none (runs a sweep
    started before the CLI and the sweep shared this record): the same run is recognised as such."""
    path = Path(out_dir) / runloop.run_directory.CONFIG_FILE
    if not resume or not path.is_file():
        return info
    return info if "image_size" in _recorded_run(out_dir) else {k: v for k, v in info.items() if k != "image_size"}


def encoder_params(method: AbstractMethod) -> int:
    """Parameters of the encoder ``method`` exports (found abstractly: nothing is allocated)."""
    trainable, _ = eqx.filter_eval_shape(lambda key: method.init(key=key), jax.random.key(0))
    encoder = method.encoder(trainable)
    return sum(int(x.size) for x in jax.tree.leaves(encoder) if isinstance(x, jax.ShapeDtypeStruct | jax.Array))
