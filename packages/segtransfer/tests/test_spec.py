"""SegmentationSpec: defaults equal to the study's ADE20K protocol, every field validated by name, every field
reachable from flopwise-finetune-seg, and the command a study folder records parses back to the same spec."""

import dataclasses
import shlex

import flopcli
import pytest
from segtransfer import SegmentationSpec
from segtransfer.cli import finetune_seg


def test_defaults_are_the_studys_ade20k_protocol():
    # Koppula et al. 2022, A.4: ADE20K, 80 epochs at batch 16 on 512 px crops, LR {1e-5, 5e-5, 1e-4, 5e-4} x
    # WD {0.1, 0.05, 0.01}, median of 5 seeds, a 256-channel FCN head, photometric jitter, centre-crop eval
    spec = SegmentationSpec()
    assert (spec.dataset, spec.steps, spec.epochs, spec.batch, spec.image_size) == ("ade20k", None, None, 16, 512)
    assert spec.lrs == (1e-5, 5e-5, 1e-4, 5e-4) and spec.wds == (0.1, 0.05, 0.01) and spec.seeds == 5
    assert (spec.head_channels, spec.eval_mode, spec.photometric, spec.sam_rho) == (256, "center_crop", "byol", None)
    assert spec.total_steps(20_210) == 101_050
    assert len(spec.grid) == 12 and spec.grid[:2] == [(1e-5, 0.1), (1e-5, 0.05)]
    assert SegmentationSpec(lrs=(1e-4,), wds=(0.05,)).grid is None


def test_every_field_is_documented():
    for field in dataclasses.fields(SegmentationSpec):
        assert len(field.metadata["help"]) > 10, field.name


@pytest.mark.parametrize(("change", "starts"), [
    ({"steps": 10, "epochs": 2.0}, "steps=10 and epochs=2.0"),
    ({"steps": 0}, "steps=0"),
    ({"epochs": -1.0}, "epochs=-1.0"),
    ({"batch": 0}, "batch=0"),
    ({"image_size": True}, "image_size=True"),
    ({"lrs": ()}, "lrs=()"),
    ({"lrs": (1e-4, 0.0)}, "lrs=(0.0001, 0.0)"),
    ({"wds": (-0.1,)}, "wds=(-0.1,)"),
    ({"seeds": 0}, "seeds=0"),
    ({"head_channels": 20, "norm_groups": 8}, "norm_groups=8 does not divide head_channels=20"),
    ({"eval_mode": "whole"}, "eval_mode='whole': expected one of ('center_crop', 'slide')"),
    ({"warmup": -1}, "warmup=-1"),
    ({"steps": 10, "warmup": 10}, "warmup=10: expected 0 <= warmup < steps=10"),
    ({"checkpoint_every": 0}, "checkpoint_every=0"),
    ({"log_every": 0}, "log_every=0"),
    ({"workers": -1}, "workers=-1"),
    ({"sam_rho": 0.0}, "sam_rho=0.0"),
    ({"sam_rho": 0.05, "sam_shards": 0}, "sam_shards=0: expected None or an int >= 1"),
    ({"sam_shards": 2}, "sam_shards=2: per-device SAM needs sam_rho"),
    ({"sam_rho": 0.05, "sam_shards": 3}, "sam_shards=3 does not divide batch=16"),
    ({"photometric": "cv2"}, "photometric='cv2': expected one of ['byol', 'mmseg', 'none']"),
    ({"eval_batch_size": 0}, "eval_batch_size=0"),
    ({"keep_checkpoints": 0}, "keep_checkpoints=0"),
    ({"dataset": ""}, "dataset=''"),
])
def test_a_bad_field_is_named_first(change, starts):
    with pytest.raises(ValueError) as error:
        SegmentationSpec(**change)
    assert str(error.value).startswith(starts)


def test_the_command_sets_every_field_and_lists_it_in_help(capsys):
    assert finetune_seg.main(["--help"]) == 0
    text = capsys.readouterr().out
    for field in dataclasses.fields(SegmentationSpec):
        assert flopcli.flag_name(field.name) in text, field.name
    for old in ("--lr", "--wd", "--batch", "--steps", "--epochs", "--image-size", "--grid", "--seeds",
                "--eval-mode", "--checkpoint-every", "--log-every", "--workers", "--tensorboard"):
        assert old in text  # the flags the command had before its flags came from the spec


def _parsed(argv):
    args = finetune_seg.build_parser().parse_args(argv)
    return finetune_seg.spec_of(args)


def test_flags_not_given_keep_the_commands_defaults_and_the_dataset_size():
    spec = _parsed(["--encoder", "scratch", "--out", "o", "--dataset", "fmnist_scenes"])
    assert spec == SegmentationSpec(dataset="fmnist_scenes", image_size=64, lrs=(1e-4,), wds=(0.05,), seeds=1)
    grid = _parsed(["--encoder", "scratch", "--out", "o", "--dataset", "ade20k", "--grid", "--seeds", "5"])
    assert grid == SegmentationSpec()  # --grid --seeds 5 on ade20k: the study's protocol
    spec = _parsed(["--encoder", "scratch", "--out", "o", "--dataset", "ade20k", "--lr", "1e-3,2e-3",
                    "--sam-rho", "0.05", "--no-tensorboard", "--warmup", "none", "--head-channels", "16",
                    "--norm-groups", "4", "--photometric", "none"])
    assert (spec.lrs, spec.sam_rho, spec.tensorboard, spec.warmup) == ((1e-3, 2e-3), 0.05, False, None)
    assert (spec.head_channels, spec.norm_groups, spec.photometric) == (16, 4, "none")


def test_the_recorded_command_parses_back_to_the_same_spec():
    spec = SegmentationSpec(dataset="fmnist_scenes", steps=7, batch=4, image_size=32, lrs=(3e-3, 1e-3),
                            wds=(0.05,), seeds=3, head_channels=8, norm_groups=4, warmup=2, sam_rho=0.05,
                            sam_shards=2, photometric="none", log_every=1, tensorboard=True, eval_mode="slide")
    command = spec.command(encoder="/runs/mae", out_dir="/out/seg", model="vit-test", data_dir="/data")
    words = shlex.split(command)
    assert words[0] == "flopwise-finetune-seg"
    assert _parsed(words[1:]) == spec
    # the sweep's seeds 0..2 of a study: the command runs the same three
    assert _parsed(shlex.split(dataclasses.replace(spec, seeds=1).command(
        encoder="scratch", out_dir="o", model="vit-test", data_dir=None, seeds=[0, 1, 2]))[1:]) == spec
