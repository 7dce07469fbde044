"""DetectionSpec is what flopwise-finetune-det parses: every field is a flag, flags rebuild a spec exactly, a bad
value names its flag before anything is written, and the run config follows the spec."""

import dataclasses
import shlex

import flopcli
import pytest
from segtransfer.cli import finetune_det
from segtransfer.detection import STUDY_RECIPE, DetectionDatasetInfo
from segtransfer.detection.spec import COMMAND, DetectionSpec

NON_DEFAULT = DetectionSpec(dataset="fmnist_scenes", steps=40, batch=4, image_size=32, detector="tiny", lr=3e-4,
                            wd=0.05, layer_decay=1.0, drop_path=0.0, warmup=3, seeds=2, max_objects=6, truncate=True,
                            min_scale=0.5, max_scale=1.5, eval_batch=2, checkpoint_every=7, log_every=1, workers=1)


def _parse(words):
    args = finetune_det.build_parser().parse_args(["--encoder", "scratch", "--out", "x", *words])
    return finetune_det.spec_of(args)


def test_help_lists_every_field(capsys):
    assert finetune_det.main(["--help"]) == 0
    text = capsys.readouterr().out
    for field in dataclasses.fields(DetectionSpec):
        assert flopcli.flag_name(field.name) in text, field.name


@pytest.mark.parametrize("spec", [DetectionSpec(), NON_DEFAULT], ids=["defaults", "changed"])
def test_flags_rebuild_the_spec(spec):
    assert _parse(flopcli.spec_to_flags(spec)) == spec
    words = shlex.split(spec.command(encoder="scratch", out_dir="runs/a b", model="vit-test", data_dir=None))
    assert words[0] == COMMAND and _parse(words[words.index("--dataset"):]) == spec


def test_the_dataset_sets_the_commands_defaults_and_scale_range_sets_both_scales():
    spec = _parse(["--dataset", "fmnist_scenes", "--scale-range", "0.3", "1.2"])
    assert (spec.image_size, spec.detector, spec.max_objects, spec.min_scale, spec.max_scale) == (64, "tiny", 8, 0.3,
                                                                                                  1.2)
    assert _parse(["--dataset", "coco_instances"]) == DetectionSpec()


@pytest.mark.parametrize(("flags", "expected"), [
    (["--lr", "0"], "argument --lr: expected a number > 0, got '0'"),
    (["--layer-decay", "1.5"], "--layer-decay: layer_decay=1.5: expected a value in (0, 1]"),
    (["--min-scale", "3"], "--min-scale: min_scale=3.0, max_scale=2.0: expected 0 < min <= max"),
    (["--scale-range", "0.2", "1", "--max-scale", "1"], "--scale-range: give it or --min-scale/--max-scale"),
])
def test_a_bad_value_names_its_flag_and_writes_nothing(capsys, tmp_path, flags, expected):
    argv = ["--encoder", "scratch", "--model", "vit-test", "--dataset", "fmnist_scenes", "--out",
            str(tmp_path / "out"), "--data-dir", str(tmp_path / "data"), *flags]
    assert finetune_det.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and expected in err, err
    assert not (tmp_path / "out").exists() and not (tmp_path / "data").exists()


def test_the_run_config_follows_the_spec():
    info = DetectionDatasetInfo(directory="/d", name="d", num_classes=10, split_sizes={"train": 40, "test": 8},
                                train_split="train", eval_split="test")
    config = NON_DEFAULT.run_config(info, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    recipe = config.recipe
    assert (recipe.steps, recipe.batch_size, recipe.image_size, recipe.peak_lr, recipe.weight_decay) == (
        40, 4, 32, 3e-4, 0.05)
    assert recipe.layer_decay is None and recipe.warmup_steps == 3 and recipe.drop_path == 0.0  # 1.0: no decay
    assert (config.detector.num_classes, config.detector.image_size, config.eval_split) == (10, 32, "test")
    assert (config.max_objects, config.truncate, config.min_scale, config.max_scale, config.eval_batch_size) == (
        6, True, 0.5, 1.5, 2)
    assert config.encoder_mean == (0.5, 0.5, 0.5) and config.encoder_std == (0.25, 0.25, 0.25)
    # the study's length and warmup fraction when neither is given
    study = DetectionSpec().run_config(info).recipe
    assert (study.steps, study.warmup_steps, study.layer_decay) == (STUDY_RECIPE.steps, STUDY_RECIPE.warmup_steps,
                                                                    0.7)
