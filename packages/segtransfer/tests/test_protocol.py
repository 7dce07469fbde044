"""The study's fine-tuning length and warmup scaling, and the validation of one run of a spec."""

import math

import pytest
from segtransfer import SegmentationRun, SegmentationSpec, finetune_steps, warmup_steps
from segtransfer.segmentation import protocol


def test_study_length_and_grid():
    assert protocol.STUDY_STEPS == 101_050  # 80 x 20,210 / 16
    assert finetune_steps(epochs=80, dataset_size=20_210, batch_size=16) == 101_050
    assert finetune_steps(epochs=2, dataset_size=100, batch_size=16) == math.ceil(200 / 16) == 13
    assert finetune_steps(steps=7, dataset_size=100, batch_size=16) == 7
    assert len(protocol.LR_GRID) * len(protocol.WD_GRID) == 12


def test_warmup_scales_with_the_run():
    assert warmup_steps(101_050) == 1500  # the study
    assert warmup_steps(1_000_000) == 1500  # capped
    assert warmup_steps(300) == round(300 * 1500 / 101_050) == 4
    assert warmup_steps(10) == 1 and warmup_steps(2) == 1 and warmup_steps(1) == 0
    run = {"dataset_dir": "d", "num_classes": 3, "eval_split": "test", "steps": 300, "lr": 1e-4, "wd": 0.05}
    assert SegmentationRun(SegmentationSpec(), **run).warmup_steps == 4
    assert SegmentationRun(SegmentationSpec(warmup=0), **run).warmup_steps == 0


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="exactly one"):
        finetune_steps(epochs=1, steps=3, dataset_size=10, batch_size=2)
    with pytest.raises(ValueError, match="epochs=0"):
        finetune_steps(epochs=0, dataset_size=10, batch_size=2)
    with pytest.raises(ValueError, match="batch_size=0"):
        finetune_steps(steps=1, dataset_size=10, batch_size=0)
    base = {"dataset_dir": "d", "num_classes": 3, "eval_split": "test", "steps": 10, "lr": 1e-4, "wd": 0.05}
    with pytest.raises(ValueError, match="warmup=10: expected 0 <= warmup < steps=10"):
        SegmentationRun(SegmentationSpec(warmup=10), **base)  # the length came from epochs: checked per run
    assert SegmentationRun(SegmentationSpec(), **base).spec.photometric == "byol"  # the study's colour jitter
    with pytest.raises(ValueError, match="lr=0.0"):
        SegmentationRun(SegmentationSpec(), **{**base, "lr": 0.0})
    with pytest.raises(ValueError, match="wd=-1"):
        SegmentationRun(SegmentationSpec(), **{**base, "wd": -1.0})
    with pytest.raises(ValueError, match="num_classes=0"):
        SegmentationRun(SegmentationSpec(), **{**base, "num_classes": 0})
