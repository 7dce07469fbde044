"""Detection as a sweep task: settings in a sweep config, its identity, load-time checks, and its result.json
read back as table rows (by the sweep and by `collect_finetune_results` for folders no sweep wrote)."""

import json

import pytest
import segtransfer
from flopstudy import collect_finetune_results
from flopstudy.stages.detection import DetectionTask
from flopstudy.sweep import TASKS, load_sweep, task_spec
from segtransfer import DetectionSpec

ENCODER = segtransfer.EncoderInfo(kind="run", path="/nowhere/mae", method="mae", model="vit-test",
                              pretrain_dataset="fmnist_objects", pretrain_steps=30, pretrain_flops=3e12)


def _sweep(detection):
    return {"name": "t", "methods": ("mae",), "backbones": ("vit-test",), "datasets": ("fmnist_objects",),
            "budgets": (100,), "tasks": {"detection": detection}}


def _result(**kw):
    base = dict(dataset="fmnist_scenes", score=12.5, box={"AP": 12.5, "AP50": 30.0, "AP75": 10.0, "APs": None,
                                                          "APm": 12.0, "APl": 14.0},
                mask={"AP": 11.0, "AP50": 28.0, "AP75": 9.0, "APs": None, "APm": 10.0, "APl": 13.0},
                seeds=[0, 1], per_seed_box_ap=[10.0, 15.0], per_seed_mask_ap=[10.0, 12.0], finetune_flops=4e12,
                finetune_flops_per_step=1e10, finetune_flops_all_runs=8e12, finetune_macs_per_step=5e9, steps=400,
                warmup_steps=5, batch_size=16, image_size=64, lr=3e-4, wd=0.1, layer_decay=0.7, num_classes=10,
                eval_split="test", num_eval_images=166, encoder=ENCODER)
    return segtransfer.DetectionResult(**{**base, **kw})


def test_sweep_config_lists_detection_with_its_identity():
    assert TASKS["detection"].score_metric == "box AP" and TASKS["detection"].kind == "detection"
    settings = dict(dataset="fmnist_scenes", steps=300, batch=16, image_size=64, detector="tiny")
    sweep = load_sweep(_sweep(settings))
    loaded = sweep.tasks["detection"]
    assert isinstance(loaded, DetectionSpec) and (loaded.steps, loaded.detector, loaded.lr) == (300, "tiny", 1e-4)
    spec = task_spec("detection", loaded)
    assert spec.label == "fmnist_scenes detection"
    more_seeds = load_sweep(_sweep(settings | {"seeds": 3, "log_every": 7, "eval_batch": 2})).tasks["detection"]
    assert task_spec("detection", more_seeds).task_id == spec.task_id  # how it runs is not what it computes
    longer = load_sweep(_sweep(settings | {"steps": 600})).tasks["detection"]
    assert task_spec("detection", longer).task_id != spec.task_id
    with pytest.raises(ValueError, match=r"config.tasks.detection.stepz: not a field of DetectionSpec; valid "
                                         r"fields: batch, "):
        load_sweep(_sweep(settings | {"stepz": 3}))


def test_bad_settings_are_errors_before_any_run():
    with pytest.raises(ValueError, match=r"layer_decay=1.5: expected a value in \(0, 1\]"):
        DetectionSpec(layer_decay=1.5)
    with pytest.raises(ValueError, match=r"steps=0: expected >= 1"):
        DetectionSpec(steps=0)
    with pytest.raises(ValueError, match=r"preset='huge' is not a detector preset; expected one of "
                                         r"\['tiny', 'vitdet'\]"):
        DetectionSpec(detector="huge")


def test_result_read_by_the_sweep_and_by_collect(tmp_path):
    task_dir = tmp_path / "det" / "mae"
    task_dir.mkdir(parents=True)
    _result().write(task_dir / "result.json")
    read = DetectionTask().read(task_dir)
    assert dict(read.scores) == {0: 10.0, 1: 15.0} and read.finetune_flops == 4e12 and read.flops_spent == 8e12
    assert read.extras == {"finetune_lr": 3e-4, "finetune_wd": 0.1, "finetune_steps": 400, "mask_ap_median": 11.0}
    assert DetectionTask().read(tmp_path) is None
    loaded = collect_finetune_results(tmp_path / "det")
    assert not loaded.problems and [r.seed for r in loaded.rows] == [0, 1]
    first = loaded.rows[0]
    assert (first.task, first.score_metric, first.score, first.method) == ("fmnist_scenes detection", "box AP", 10.0,
                                                                           "mae")
    assert first.pretrain_flops == 3e12 and first.finetune_flops == 4e12
    assert [r.extras["mask_ap"] for r in loaded.rows] == [10.0, 12.0]
    segmentation = tmp_path / "seg"
    segmentation.mkdir()
    (segmentation / "result.json").write_text(json.dumps({"seeds": [0], "per_seed_miou": [0.5]}))
    with pytest.raises(ValueError, match=r"not a detection result \(ValueError: task=None, expected 'detection'\)"):
        DetectionTask().read(segmentation)



def test_the_command_in_the_task_folder_reruns_the_same_study(tmp_path, monkeypatch, capsys):
    import shlex

    import flopdata
    from segtransfer.cli import finetune_det
    from segtransfer.detection import study

    flopdata.build("fmnist_scenes", data_dir=tmp_path / "data", num_examples=12, image_size=32)
    capsys.readouterr()
    calls = {}

    def fake_study(config, *, encoder, out_dir, dataset, model, seeds, command, **options):
        calls[str(out_dir)] = (config, encoder, dataset, model, list(seeds), command)
        return {"status": "preempted"}  # nothing trained

    monkeypatch.setattr(study, "detection_study", fake_study)
    spec = DetectionSpec(dataset="fmnist_scenes", steps=30, batch=4, image_size=32, detector="tiny", warmup=2,
                         max_objects=8, min_scale=0.5, log_every=3)
    with pytest.raises(Exception, match="was stopped"):
        DetectionTask().run(spec, encoder="scratch", model="vit-test", out_dir=tmp_path / "task", seeds=[0, 1],
                            data_dir=str(tmp_path / "data"))
    config, *rest, command = calls[str(tmp_path / "task")]
    words = shlex.split(command)
    assert words[0] == "flopwise-finetune-det" and "--seeds" in words and words[words.index("--seeds") + 1] == "2"
    words[words.index("--out") + 1] = str(tmp_path / "by-hand")
    assert finetune_det.main(words[1:]) == 3  # the fake's "preempted"
    by_hand, *by_hand_rest, _ = calls[str(tmp_path / "by-hand")]
    assert by_hand == config and by_hand_rest == rest == ["scratch", "fmnist_scenes", "vit-test", [0, 1]]
    assert config.recipe.steps == 30 and config.min_scale == 0.5 and config.log_every == 3


@pytest.mark.parametrize(("settings", "task_id"), [
    ({}, "coco_instances_detection-ccb5a54b45e8"),
    (dict(dataset="fmnist_scenes", steps=300, batch=16, image_size=64, detector="tiny", lr=3e-4, layer_decay=1.0,
          warmup=5, truncate=True, min_scale=0.5, seeds=3, log_every=7), "fmnist_scenes_detection-4c20168d5a60"),
])
def test_task_ids_are_those_the_settings_had_before_the_spec(settings, task_id):
    # the ids DetectionSettings (the sweep's own schema before DetectionSpec) gave: finished task folders are found
    assert task_spec("detection", DetectionSpec(**settings)).task_id == task_id
