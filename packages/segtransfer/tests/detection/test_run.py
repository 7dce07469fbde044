"""Detection fine-tuning through the engine on a tiny TFDS set: the study's result record, exact resume, the
same-run check, data parallelism over the 4 fake devices, and the checks that run before anything is written."""

import dataclasses
import json
import sys
from pathlib import Path

import pytest
from segtransfer import DetectionResult
from segtransfer.detection import (
    DetectionRecipe,
    DetectionRunConfig,
    build_detector,
    check_study_dir,
    describe_detection_dataset,
    detection_recipe,
    detection_run,
    detection_study,
    detection_warmup_steps,
    detector_config,
)
from segtransfer.detection.run import detection_task, prepare_batch

sys.path.insert(0, str(Path(__file__).parent))
from _detection_micro import MICRO  # noqa: E402

TRAIN = [([(2, 3, 12, 15), (20, 6, 30, 20)], [None, None]), ([(4, 4, 10, 10), (14, 2, 28, 22)], [None, None])] * 2
TEST = [([(6, 2, 18, 12)], [None]), ([(1, 1, 9, 9), (12, 10, 30, 22)], [None, None])]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, kit):
    return kit.build(tmp_path_factory.mktemp("detrun"), TRAIN, TEST)


def _config(dataset, **kw):
    info = describe_detection_dataset(dataset)
    recipe = detection_recipe(steps=4, batch_size=4, image_size=32, lr=1e-3, wd=0.1, layer_decay=0.7)
    base = dict(dataset_dir=dataset, detector=detector_config("tiny", num_classes=info.num_classes, **MICRO),
                recipe=recipe, eval_split=info.eval_split, max_objects=4, eval_batch_size=2, checkpoint_every=2,
                log_every=1)
    return DetectionRunConfig(**{**base, **kw})


def test_dataset_description_recipe_and_config_checks(dataset, directory):
    info = describe_detection_dataset(dataset)
    assert (info.num_classes, info.train_size, info.eval_split, info.split_sizes["test"]) == (5, 4, "test", 2)
    with pytest.raises(ValueError, match=r"has splits \['train'\]; expected 'validation' or 'test'"):
        describe_detection_dataset(directory)
    # ViTDet's 250 of 22,000 steps, kept as a fraction for short runs, capped at 250
    assert [detection_warmup_steps(n) for n in (1, 2, 300, 22_000, 100_000)] == [0, 1, 3, 250, 250]
    recipe = detection_recipe(steps=900, batch_size=8, image_size=64)
    assert (recipe.warmup_steps, recipe.milestones, recipe.peak_lr, recipe.layer_decay) == (10, (800, 867), 1e-4, 0.7)
    with pytest.raises(ValueError, match=r"recipe.image_size=64 but detector.image_size=32"):
        _config(dataset, recipe=recipe)
    with pytest.raises(ValueError, match=r"DetectionRunConfig.max_objects=0: expected a positive int"):
        _config(dataset, max_objects=0)
    with pytest.raises(ValueError, match=r"batch lacks \['valid'\]"):
        prepare_batch({"image": 0, "boxes": 0, "classes": 0, "masks": 0, "image_hw": 0})


def test_study_dir_checks_write_nothing(tmp_path):
    with pytest.raises(ValueError, match="--resume: .* holds no detection runs; there is nothing to resume"):
        check_study_dir(tmp_path / "new", resume=True, resume_flag="--resume")
    (tmp_path / "result.json").write_text("{}")
    with pytest.raises(ValueError, match="already holds result.json; pass --resume or another dir"):
        check_study_dir(tmp_path, resume=False, resume_flag="--resume")
    assert not (tmp_path / "new").exists()


@pytest.mark.slow  # three 4-step runs of the micro detector (one compiled step each) and their evaluations
def test_study_record_and_exact_resume(dataset, tmp_path, checkpoints_equal):
    config = _config(dataset)
    result = detection_study(config, encoder="scratch", model="vit-test", out_dir=tmp_path / "study",
                             dataset="tiny", seeds=[0], log=lambda s: None)
    record = DetectionResult.read(tmp_path / "study" / "result.json")
    full = json.loads((tmp_path / "study" / "runs" / "seed0" / "run.json").read_text())
    assert record.to_json() == result and record.task == "detection" and record.score_metric == "box AP"
    assert record.score == full["bbox"]["AP"] == record.per_seed_box_ap[0] and 0.0 <= record.score <= 100.0
    assert record.mask["AP"] == full["segm"]["AP"] and set(record.box) == set(full["bbox"])
    assert record.num_eval_images == 2 and record.num_classes == 5 and record.warmup_steps == 1
    assert record.encoder.kind == "scratch" and record.encoder.pretrain_flops == 0.0
    per_step = record.finetune_flops_per_step
    assert per_step == full["flops_per_step"] > 0 and record.finetune_flops == per_step * 4
    assert record.finetune_macs_per_step == per_step / 2

    stopped = detection_run(config, encoder="scratch", model="vit-test", out_dir=tmp_path / "b",
                            stop=lambda done: done == 3, log=lambda s: None)
    assert stopped == {"status": "preempted", "step": 3}
    with pytest.raises(ValueError, match="already holds a run; pass resume=True"):
        detection_run(config, encoder="scratch", model="vit-test", out_dir=tmp_path / "b")
    changed = dataclasses.replace(config, recipe=dataclasses.replace(config.recipe, peak_lr=1e-2))
    with pytest.raises(ValueError, match=r"detection.recipe.peak_lr: 0.001 -> 0.01"):
        detection_run(changed, encoder="scratch", model="vit-test", out_dir=tmp_path / "b", resume=True)
    # how the run is executed may change on resume
    resumed = detection_run(dataclasses.replace(config, log_every=2), encoder="scratch", model="vit-test",
                            out_dir=tmp_path / "b", resume=True, log=lambda s: None)
    # bit-identical final state (model + AdamW moments + schedule count + step + key) and the same evaluation
    task = detection_task(build_detector(config, "scratch", model="vit-test")[0], config)
    assert checkpoints_equal(task, (tmp_path / "study" / "runs" / "seed0", 4), (tmp_path / "b", 4))
    assert not checkpoints_equal(task, (tmp_path / "b", 3), (tmp_path / "b", 4))  # the steps trained
    assert [resumed[k] for k in ("bbox", "segm", "final_loss")] == [full[k] for k in ("bbox", "segm", "final_loss")]
    logged = [json.loads(line) for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged] == [1, 2, 3, 4, 4]  # the last record is the final evaluation
    assert "box_AP" in logged[-1] and logged[0]["lr"] == pytest.approx(1e-3 * 0.001)  # warmup from 0.001
    assert DetectionRecipe(steps=4, warmup_steps=1).milestones == config.recipe.milestones
