"""Pre-training through the engine on toy methods: run directory, metrics, FLOPs (against a closed form) and CO2
accounting, the NaN guard, the same-run check on resume, export."""

import json
import sys
from pathlib import Path

import equinox as eqx
import jax
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _engine_toys import SyntheticData, ToyClassifier, ToyTeacher  # noqa: E402
from runloop import Checkpointer, LoopConfig, NonFiniteError, OptionNames, all_finite  # noqa: E402
from sslmethods.pretrain.export import export_encoder  # noqa: E402
from sslmethods.pretrain.optim import OptimConfig  # noqa: E402
from sslmethods.pretrain.train_state import init_pretrain_state  # noqa: E402
from sslmethods.pretrain.trainer import KnnSplits, TrainConfig, build_optimizer, train_method  # noqa: E402
from vitcore import load_pretrained  # noqa: E402

OPTIM = OptimConfig(lr=1e-2, weight_decay=0.05, warmup_fraction=0.1)


class NanAt(SyntheticData):
    """Batch number ``bad`` (0-based) holds a NaN pixel."""

    def __init__(self, batch_size, bad):
        super().__init__(batch_size)
        self.bad = bad

    def batch_at(self, index):
        batch = super().batch_at(index)
        if index == self.bad:
            batch["image"][0, 0, 0, 0] = np.nan
        return batch


QUIET = {"print_progress": False, "measure_flops": False}
SHAPE = (16, 16, 1)


def _knn():
    ev = SyntheticData(32, image_shape=SHAPE, num_classes=8, seed=7)
    a, b = ev.batch_at(0), ev.batch_at(1)
    return KnnSplits(a["image"], a["label"], b["image"], b["label"], num_classes=8)


def _cfg(path, *, resume=False, **loop):
    return TrainConfig(out_dir=str(path), loop=LoopConfig(**loop), resume=resume)


@pytest.mark.slow
def test_run_directory_and_accounting(tmp_path):
    # noise=0: no random draws, so the step's FLOPs are its two matmuls plus element-wise work
    method, b = ToyClassifier(image_shape=SHAPE, hidden=64, num_classes=8, noise=0.0), 256
    cfg = _cfg(tmp_path, steps=12, batch_size=b, log_every=4, checkpoint_every=6, eval_every=6, watts=100.0,
               print_progress=False)
    summary, state = train_method(method, OPTIM, SyntheticData(b, image_shape=SHAPE, num_classes=8), cfg, knn=_knn(),
                           run_info={"model": "toy-mlp", "dataset": "synthetic"})
    names = {p.name for p in tmp_path.iterdir()}
    assert {"config.json", "metrics.jsonl", "checkpoints", "encoder.eqx", "encoder.json", "summary.json"} <= names
    assert "run.lock" not in names  # released
    assert json.loads((tmp_path / "summary.json").read_text())["steps"] == 12
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["train"]["steps"] == 12 and config["optim"]["lr"] == 1e-2 and config["run"]["model"] == "toy-mlp"

    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    train_records = [r for r in records if "loss" in r]
    assert [r["step"] for r in train_records] == [4, 8, 12]
    assert [r["step"] for r in records if "knn_top1" in r] == [6, 12]
    for key in ("loss", "lr", "grad_norm", "param_norm", "images_per_second", "flops", "kg_co2e"):
        assert key in train_records[-1]

    # FLOPs of the compiled step against the closed form: each matmul's forward and weight gradient, plus the
    # input gradient of the second only (nothing needs the images' gradient), 2 FLOPs per multiply-add, the whole
    # global batch. A forward-only count (0.5x) or a per-device count (0.25x) fails; Adam and the norms (done by
    # each of the 4 devices on the replicated parameters) and the softmax add element-wise work (measured: +11.7%).
    first, second = 2 * b * 256 * 64, 2 * b * 64 * 8
    matmuls = 2 * first + 3 * second
    assert matmuls <= summary.flops_per_step <= 1.2 * matmuls, (summary.flops_per_step, matmuls)
    assert summary.total_flops == summary.flops_per_step * 12
    assert train_records[-1]["flops"] == summary.flops_per_step * 12
    # CO2: devices x watts x hours -> kWh x 267 gCO2e/kWh (gcp:europe-west1).
    kwh = summary.devices * 100.0 * summary.wall_seconds / 3600 / 1000
    assert summary.energy_kwh == pytest.approx(kwh, rel=1e-9)
    assert summary.kg_co2e == pytest.approx(kwh * 267 / 1000, rel=1e-9)
    assert summary.status == "completed" and summary.knn[-1]["step"] == 12
    assert int(state.step) == 12 and all_finite(state)


def test_nan_stops_naming_the_step_and_last_good_checkpoint(tmp_path):
    flags = OptionNames(skip_nonfinite="--skip-nonfinite", resume="--resume", resume_from="--resume-from STEP")
    cfg = _cfg(tmp_path, steps=10, batch_size=8, log_every=10, checkpoint_every=2, option_names=flags, **QUIET)
    with pytest.raises(NonFiniteError, match=r"at step 5 .*last good checkpoint: .*checkpoints/4 .*--resume "
                                             r"--resume-from 4, or pass --skip-nonfinite"):
        train_method(ToyTeacher(), OPTIM, NanAt(8, bad=4), cfg)  # the 5th batch is bad
    ckpt = Checkpointer(tmp_path / "checkpoints")
    assert ckpt.latest_step() == 4  # nothing written after the bad step
    tx, _ = build_optimizer(ToyTeacher(), OPTIM, 10)
    restored = ckpt.restore(init_pretrain_state(ToyTeacher(), tx, key=jax.random.key(0)))
    assert all_finite(restored.state)
    ckpt.close()


def test_nan_skip_mode_drops_the_update(tmp_path):
    cfg = _cfg(tmp_path, steps=6, batch_size=8, log_every=3, checkpoint_every=3, on_nonfinite="skip", **QUIET)
    summary, state = train_method(ToyTeacher(), OPTIM, NanAt(8, bad=2), cfg)
    assert summary.skipped_steps == 1 and summary.steps == 6
    assert int(state.step) == 6 and all_finite(state)


def test_resume_must_be_the_same_run(tmp_path):
    train_method(ToyTeacher(), OPTIM, SyntheticData(8), _cfg(tmp_path, steps=2, batch_size=8, **QUIET),
          run_info={"model": "toy", "dataset": "a"})
    with pytest.raises(ValueError, match=r"train.batch_size: 8 -> 16; train.seed: 0 -> 1"):
        train_method(ToyTeacher(), OPTIM, SyntheticData(16), TrainConfig(
            out_dir=str(tmp_path), loop=LoopConfig(steps=2, batch_size=16, **QUIET), seed=1, resume=True),
            run_info={"model": "toy", "dataset": "a"})
    # more steps (and other reporting) may change: the run continues from its last checkpoint
    summary, _ = train_method(ToyTeacher(), OPTIM, SyntheticData(8), _cfg(tmp_path, resume=True, steps=4, batch_size=8,
                                                                   log_every=1, **QUIET),
                       run_info={"model": "toy", "dataset": "a"})
    assert summary.steps == 4 and summary.status == "completed"
    with pytest.raises(ValueError, match=r"resume=True: .*nothing does not exist; there is nothing to resume"):
        train_method(ToyTeacher(), OPTIM, SyntheticData(8),
                     _cfg(tmp_path / "nothing", resume=True, steps=2, batch_size=8))


def test_batch_size_mismatch_is_an_error_and_leaves_no_run(tmp_path):
    cfg = _cfg(tmp_path / "run", steps=2, batch_size=16, **QUIET)
    with pytest.raises(ValueError, match=r"sizes \{'image': 8, 'label': 8\}; expected 16"):
        train_method(ToyTeacher(), OPTIM, SyntheticData(8), cfg)
    assert not (tmp_path / "run").exists()  # the corrected command can run again
    with pytest.raises(ValueError, match="steps=0; expected a positive integer"):
        LoopConfig(steps=0, batch_size=8)


@pytest.mark.slow
def test_vit_encoder_export_round_trip(tmp_path):
    import vitcore

    vit = vitcore.create("vit-test", key=jax.random.key(0))
    export_encoder(vit, tmp_path)
    loaded = load_pretrained(tmp_path)
    assert loaded.config == vit.config
    images = jax.random.uniform(jax.random.key(1), (2, 32, 32, 3))
    np.testing.assert_array_equal(np.asarray(loaded(images).pooled), np.asarray(vit(images).pooled))
    for a, b in zip(jax.tree.leaves(eqx.filter(loaded, eqx.is_array)), jax.tree.leaves(eqx.filter(vit, eqx.is_array)),
                    strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
