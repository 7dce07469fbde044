"""finetune_run / run_study on a tiny TFDS segmentation set: exact resume (also after the last checkpoint), the
same-run check, grid + seeds, FLOPs of the compiled step."""

import dataclasses
import io
import json

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image
from runloop import Checkpointer
from segtransfer import (
    SegmentationRun,
    SegmentationSpec,
    describe_segmentation_dataset,
    finetune_run,
    run_study,
    whole_image_batches,
)
from segtransfer.segmentation.run import LATER_OPTIONS, build_model, finetune_task
from segtransfer.transfer_run import transfer_config

S = 16


def _png(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


class TinySeg(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Three classes: background 0, a red square 1, a blue square 2 (position/size from the index)."""

    VERSION = tfds.core.Version("1.0.0")
    url_infos = None

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(S, S, 3)),
                "segmentation_mask": tfds.features.Image(shape=(S, S, 1)),
            }),
            metadata=tfds.core.MetadataDict(segmentation_classes=["bg", "red", "blue"]),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(12, 0), "test": self._generate_examples(4, 100)}

    def _generate_examples(self, count, offset):
        for index in range(count):
            rng = np.random.default_rng(offset + index)
            mask = np.zeros((S, S), np.uint8)
            cls = 1 + index % 2
            y, x = rng.integers(0, S - 6, 2)
            mask[y : y + 6, x : x + 6] = cls
            image = np.full((S, S, 3), 128, np.uint8)
            image[mask == 1] = (220, 30, 30)
            image[mask == 2] = (30, 30, 220)
            yield index, {"image": _png(image), "segmentation_mask": _png(mask)}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    builder = TinySeg(data_dir=str(tmp_path_factory.mktemp("tinyseg")), file_format="array_record")
    builder.download_and_prepare()
    return builder.data_dir


def _config(dataset, steps=4, **kw):
    info = describe_segmentation_dataset(dataset)
    spec = SegmentationSpec(**{**dict(batch=4, image_size=S, eval_batch_size=4, head_channels=8, norm_groups=4,
                                      checkpoint_every=2, log_every=1), **kw})
    return SegmentationRun(spec, dataset_dir=dataset, num_classes=info.num_classes, eval_split=info.eval_split,
                           steps=steps, lr=1e-3, wd=0.05)


def test_dataset_description(dataset):
    info = describe_segmentation_dataset(dataset)
    assert (info.num_classes, info.train_size, info.eval_split, info.split_sizes["test"]) == (3, 12, "test", 4)


def test_whole_image_batches_for_slide_eval(dataset):
    full = list(whole_image_batches(dataset, "test", 3, short_side=S))
    assert len(full) == 4 and all(b["image"].shape == (1, S, S, 3) and b["mask"].dtype == np.int32 for b in full)
    assert {int(v) for b in full for v in np.unique(b["mask"])} == {0, 1, 2}
    red = full[0]["image"][0][full[0]["mask"][0] == 1]
    np.testing.assert_allclose(red, np.broadcast_to(np.float32([220, 30, 30]) / 255, red.shape), rtol=1e-6)
    half = list(whole_image_batches(dataset, "test", 3, short_side=S // 2))
    # PIL nearest-neighbour halving samples pixel centres 2i + 1
    np.testing.assert_array_equal(half[1]["mask"][0], full[1]["mask"][0][1::2, 1::2])


@pytest.mark.slow  # three short runs of one compiled step on 2 shared cores: ~20-40 s
def test_interrupted_run_resumes_exactly(dataset, tmp_path, checkpoints_equal):
    config = _config(dataset)
    full = finetune_run(config, encoder="scratch", model="vit-test", out_dir=tmp_path / "a", log=lambda s: None)
    assert full["status"] == "done" and full["warmup_steps"] == 1
    stopped = finetune_run(config, encoder="scratch", model="vit-test", out_dir=tmp_path / "b",
                           stop=lambda done: done == 3, log=lambda s: None)
    assert stopped == {"status": "preempted", "step": 3}
    with Checkpointer(tmp_path / "b" / "checkpoints") as ckpt:
        assert ckpt.latest_step() == 3  # an off-interval stop still saves
    with pytest.raises(ValueError, match="already holds a run; pass resume=True"):
        finetune_run(config, encoder="scratch", model="vit-test", out_dir=tmp_path / "b")
    with pytest.raises(ValueError, match=r"finetune.lr: 0.001 -> 0.01; finetune.steps: 4 -> 8"):
        finetune_run(dataclasses.replace(config, steps=8, lr=1e-2), encoder="scratch", model="vit-test",
                     out_dir=tmp_path / "b", resume=True)
    with pytest.raises(ValueError, match=r'model: "vit-test" -> "vit-ti16"'):
        finetune_run(config, encoder="scratch", model="vit-ti16", out_dir=tmp_path / "b", resume=True)
    resumed = finetune_run(config, encoder="scratch", model="vit-test", out_dir=tmp_path / "b", resume=True,
                           log=lambda s: None)
    # bit-identical final state (model + Adam moments + schedule count + step + key) and the same evaluation
    task = finetune_task(build_model(config, "scratch", model="vit-test")[0], config)
    assert checkpoints_equal(task, (tmp_path / "a", 4), (tmp_path / "b", 4))
    assert [resumed[k] for k in ("miou", "aacc", "iou", "final_loss")] == \
        [full[k] for k in ("miou", "aacc", "iou", "final_loss")]
    assert not checkpoints_equal(task, (tmp_path / "b", 3), (tmp_path / "b", 4))  # the steps did train
    assert json.loads((tmp_path / "b" / "run.json").read_text())["miou"] == resumed["miou"]
    assert [json.loads(line)["step"] for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()] == \
        [1, 2, 3, 4, 4]  # log_every=1, then the final evaluation's record


@pytest.mark.slow  # three short runs
def test_a_run_that_augments_on_the_device_trains_and_resumes_exactly(dataset, tmp_path):
    """augment="device": the loader serves decoded 16 px images, the step rescales/crops/flips them with draws from
    the state's key, so a run stopped and resumed draws the same crops as one that ran through."""
    config = _config(dataset, augment="device", photometric="none")
    full = finetune_run(config, encoder="scratch", model="vit-test", out_dir=tmp_path / "a", log=lambda s: None)
    assert full["status"] == "done" and 0.0 <= full["miou"] <= 1.0 and full["flops_per_step"] > 0
    assert json.loads((tmp_path / "a" / "config.json").read_text())["finetune"]["augment"] == "device"
    stopped = finetune_run(config, encoder="scratch", model="vit-test", out_dir=tmp_path / "b",
                           stop=lambda done: done == 2, log=lambda s: None)
    assert stopped == {"status": "preempted", "step": 2}
    resumed = finetune_run(config, encoder="scratch", model="vit-test", out_dir=tmp_path / "b", resume=True,
                           log=lambda s: None)
    assert [resumed[k] for k in ("miou", "iou", "final_loss")] == [full[k] for k in ("miou", "iou", "final_loss")]


@pytest.mark.slow  # one short run, then a resume that only evaluates
def test_killed_after_its_last_checkpoint_still_reports_the_final_loss(dataset, tmp_path):
    config = _config(dataset, steps=2)
    full = finetune_run(config, encoder="scratch", model="vit-test", out_dir=tmp_path, log=lambda s: None)
    (tmp_path / "run.json").unlink()  # as if killed after the final checkpoint, before run.json
    again = finetune_run(config, encoder="scratch", model="vit-test", out_dir=tmp_path, resume=True,
                         log=lambda s: None)
    assert again["final_loss"] is not None and again["final_loss"] == full["final_loss"]
    assert again["miou"] == full["miou"] and again["flops_per_step"] == full["flops_per_step"] > 0


@pytest.mark.slow  # 3 runs: ~30 s
def test_study_grid_seeds_and_flops(dataset, tmp_path):
    config = _config(dataset, steps=2, checkpoint_every=5)
    grid = [(1e-3, 0.05), (1e-6, 0.05)]
    result = run_study(config, encoder="scratch", model="vit-test", out_dir=tmp_path, dataset="tiny", grid=grid,
                       seeds=[0, 1], log=lambda s: None)
    runs = {p.name: json.loads((p / "run.json").read_text()) for p in (tmp_path / "runs").iterdir()}
    assert sorted(runs) == ["lr0.001-wd0.05-seed0", "lr0.001-wd0.05-seed1", "lr1e-06-wd0.05-seed0"] or \
        sorted(runs) == ["lr0.001-wd0.05-seed0", "lr1e-06-wd0.05-seed0", "lr1e-06-wd0.05-seed1"]
    best = max(result["grid"], key=lambda r: r["miou"])
    assert (result["lr"], result["wd"]) == (best["lr"], best["wd"])
    chosen = [runs[f"lr{result['lr']:g}-wd0.05-seed{s}"]["miou"] for s in (0, 1)]
    assert result["per_seed_miou"] == chosen and result["miou"] == pytest.approx(np.median(chosen))
    # FLOPs of the compiled step the runs executed: one run = per step x 2 steps; all 3 runs done = x 6
    per_step = result["finetune_flops_per_step"]
    assert per_step == runs[f"lr{result['lr']:g}-wd0.05-seed0"]["flops_per_step"]
    assert result["finetune_flops_source"] == "compiled step (runloop)"
    assert per_step > 0 and result["finetune_macs_per_step"] == per_step / 2
    assert result["finetune_flops"] == per_step * 2 and result["finetune_flops_all_runs"] == per_step * 6
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["seeds"] == [0, 1] and len(saved["iou"]) == 3 and saved["encoder"]["kind"] == "scratch"


def test_study_resume_needs_runs(dataset, tmp_path):
    config = _config(dataset, steps=2, checkpoint_every=5)
    with pytest.raises(ValueError, match="--resume: .* holds no fine-tuning runs; there is nothing to resume"):
        run_study(config, encoder="scratch", model="vit-test", out_dir=tmp_path, dataset="tiny", resume=True,
                  resume_flag="--resume")
    assert not any(tmp_path.iterdir())


def test_options_added_later_are_recorded_only_when_a_run_differs_from_what_earlier_runs_had():
    config = SegmentationRun(SegmentationSpec(), dataset_dir="d", num_classes=3, eval_split="validation", steps=4,
                             lr=1e-3, wd=0.05)
    recorded = transfer_config("finetune", config.to_json(), "scratch", None, later=LATER_OPTIONS)["finetune"]
    # what a run from before the options wrote
    assert not {"photometric", "sam_rho", "sam_shards"} & set(recorded)
    spec = SegmentationSpec(photometric="none", sam_rho=0.05, sam_shards=4)
    changed = transfer_config("finetune", dataclasses.replace(config, spec=spec).to_json(), "scratch", None,
                              later=LATER_OPTIONS)["finetune"]
    assert (changed["photometric"], changed["sam_rho"], changed["sam_shards"]) == ("none", 0.05, 4)
    assert "augment" not in recorded
    device = SegmentationSpec(photometric="none", augment="device")
    assert transfer_config("finetune", dataclasses.replace(config, spec=device).to_json(), "scratch", None,
                           later=LATER_OPTIONS)["finetune"]["augment"] == "device"


def test_a_run_records_what_run_directories_written_before_the_spec_recorded():
    """config.json's ``finetune`` record is the same-run check's key on resume: a run folder written by the
    earlier per-run config (its 20 fields, literally below: what `FinetuneConfig` wrote for a sweep's demo run)
    must read as the same run, so ``SegmentationRun.to_json`` keeps every key and value."""
    old = {"dataset_dir": "/data/fmnist_scenes/1.0.0", "num_classes": 11, "steps": 1000, "lr": 0.003, "wd": 0.05,
           "batch_size": 16, "image_size": 56, "seed": 2, "warmup": None, "eval_mode": "center_crop",
           "train_split": "train", "eval_split": "test", "eval_batch_size": 16, "head_channels": 32,
           "norm_groups": 8, "checkpoint_every": 500, "keep_checkpoints": 2, "log_every": 250, "workers": 0,
           "tensorboard": False, "photometric": "none"}
    spec = SegmentationSpec(dataset="fmnist_scenes", steps=1000, batch=16, image_size=56, lrs=(0.003,), wds=(0.05,),
                            seeds=1, head_channels=32, norm_groups=8, photometric="none", log_every=250)
    run = SegmentationRun(spec, dataset_dir="/data/fmnist_scenes/1.0.0", num_classes=11, eval_split="test",
                          steps=1000, lr=0.003, wd=0.05, seed=2)
    # encoder_identity came later; a run recorded without it is checked by its encoder path alone (the test of a
    # replaced encoder below)
    assert transfer_config("finetune", run.to_json(), "scratch", "vit-test", later=LATER_OPTIONS) == {
        "finetune": old, "encoder": "scratch", "encoder_identity": None, "model": "vit-test"}


def _encoder_dir(path, seed):
    import jax.random as jr
    import runloop
    import vitcore

    runloop.write_files_atomic(path, vitcore.encoder_files(vitcore.create("vit-test", key=jr.key(seed),
                                                                          image_size=S)))
    base = {"method": "mae", "model": "vit-test", "dataset": None, "status": "completed", "steps": 10,
            "batch_size": 8, "flops_per_step": 1e9, "total_flops": 1e10}
    runloop.PretrainSummary(**base).write(path / "summary.json")
    return path


def test_a_resume_after_the_encoder_was_replaced_is_refused_and_a_moved_folder_resumes(dataset, tmp_path):
    import shutil

    config = _config(dataset, steps=2, checkpoint_every=1)
    root = tmp_path / "sweep"
    encoder = _encoder_dir(root / "enc", seed=0)
    original = {p.name: p.read_bytes() for p in encoder.iterdir()}
    stopped = finetune_run(config, encoder=str(encoder), out_dir=root / "ft", stop=lambda s: s == 1,
                           log=lambda s: None)
    assert stopped == {"status": "preempted", "step": 1}
    recorded = json.loads((root / "ft" / "config.json").read_text())
    assert recorded["encoder"] == "../enc" and recorded["encoder_identity"].startswith("sha256:")
    _encoder_dir(encoder, seed=1)  # another encoder at the same path: its provenance would be recorded wrongly
    with pytest.raises(ValueError, match=rf"^encoder '{encoder.resolve()}' is not the encoder the run in "
                                         rf"{root / 'ft'} started from: its files changed since"):
        finetune_run(config, encoder=str(encoder), out_dir=root / "ft", resume=True, log=lambda s: None)
    assert json.loads((root / "ft" / "config.json").read_text()) == recorded  # nothing rewritten
    for name, data in original.items():
        (encoder / name).write_bytes(data)
    shutil.move(root, tmp_path / "moved")  # mv of the whole folder: encoder and run move together
    done = finetune_run(config, encoder=str(tmp_path / "moved" / "enc"), out_dir=tmp_path / "moved" / "ft",
                        resume=True, log=lambda s: None)
    assert done["status"] == "done" and done["encoder"]["path"] == str((tmp_path / "moved" / "enc").resolve())
    # a run recorded before the identity existed (and with an absolute path) resumes by its path alone
    legacy = json.loads((tmp_path / "moved" / "ft" / "config.json").read_text())
    del legacy["encoder_identity"]
    legacy["encoder"] = str((tmp_path / "moved" / "enc").resolve())
    (tmp_path / "moved" / "ft" / "config.json").write_text(json.dumps(legacy))
    again = finetune_run(config, encoder=str(tmp_path / "moved" / "enc"), out_dir=tmp_path / "moved" / "ft",
                         resume=True, log=lambda s: None)
    assert again == done
