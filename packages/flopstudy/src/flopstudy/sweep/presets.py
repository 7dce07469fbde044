"""Named presets a sweep config starts from: the study's paper-scale settings, each declared once.

A config assigns a copy and states only what differs (``configs/paper.py``, ``configs/convnets.py:paper``)::

    from flopstudy.sweep.presets import ADE20K_SEGMENTATION, PAPER_PRETRAIN, PAPER_SLURM

    config.tasks.segmentation = dict(ADE20K_SEGMENTATION)    # or dict(ADE20K_SEGMENTATION, seeds=1)
    config.pretrain = dict(PAPER_PRETRAIN)
    config.slurm = dict(PAPER_SLURM)

The presets are read-only mappings; ``dict(...)`` gives the config its own copy, which ``--config.x=value``
overrides change like any field. The CO2 model needs no preset: `Co2Settings`' defaults are the study's reference
hardware (32 TPUv3 in gcp europe-west1, ``flopmeter.STUDY_HARDWARE``/``STUDY_CHIPS``/``STUDY_REGION``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from segtransfer import SegmentationSpec
from segtransfer.segmentation.protocol import STUDY_EPOCHS

__all__ = ["ADE20K_SEGMENTATION", "ONE_GPU_SLURM", "PAPER_PRETRAIN", "PAPER_SLURM"]

ADE20K_SEGMENTATION: Mapping[str, Any] = MappingProxyType(
    dataclasses.asdict(SegmentationSpec(epochs=float(STUDY_EPOCHS))))
"""The study's ADE20K fine-tuning protocol (Koppula et al. 2022, appendix A.4) as ``config.tasks.segmentation``:
every field of `segtransfer.SegmentationSpec` at its default (80 epochs at batch 16 on 512 px crops, the 4 x 3
LR x WD grid, the median of 5 seeds, the 256-channel FCN head, BYOL's colour jitter), the length spelled out as
80.0 epochs. The spec's own default length (None) means the same 80 epochs, but the study's sweeps have always
hashed 80.0 into their segmentation task's id, so keeping it keeps their task folders."""

PAPER_PRETRAIN: Mapping[str, Any] = MappingProxyType({"log_every": 100, "checkpoint_every": 5000, "eval_every": 25_000})
"""How pre-training runs at paper scale (``config.pretrain``; none of these is part of a run's identity): a
metrics record every 100 steps, a checkpoint every 5,000 (what a preempted job redoes at most), the kNN monitor
every 25,000."""

PAPER_SLURM: Mapping[str, Any] = MappingProxyType({
    "timeout_min": 72 * 60, "gpus_per_node": 8, "tasks_per_node": 1, "cpus_per_task": 32, "slurm_partition": None})
"""submitit parameters of ``--executor slurm`` at paper scale (``config.slurm``): one node of 8 GPUs and 32 CPUs
per run with one process that uses all of them, 72 h a job. ``slurm_partition``: the site's name (None: the
cluster's default), e.g. ``--config.slurm.slurm_partition=gpu``."""

ONE_GPU_SLURM: Mapping[str, Any] = MappingProxyType(dict(PAPER_SLURM, timeout_min=24 * 60, gpus_per_node=1,
                                                         cpus_per_task=8))
"""submitit parameters of ``--executor slurm`` for sweeps sized for one GPU a run (``configs/own_data.py``): one
GPU and 8 CPUs of a node per run, 24 h a job; ``slurm_partition`` as in `PAPER_SLURM`."""
