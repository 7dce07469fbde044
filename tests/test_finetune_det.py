"""tools/finetune_det.py end to end at a micro size: fmnist_scenes as a detection set, an encoder from a
pre-training run directory, result.json in the format tools/report.py reads (box AP as the score)."""

import json
from pathlib import Path

import finetune_det  # tools/finetune_det.py (tools/ is on sys.path via tests/conftest.py)
import jax.random as jr
import pytest
import report
import runloop
import segtransfer
import vitcore

FMNIST = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")


@pytest.mark.slow  # one compiled detector step, one evaluation: ~1-2 min on 2 shared cores
@pytest.mark.skipif(not FMNIST.exists(), reason="Fashion-MNIST (Debian dataset-fashion-mnist) is not installed")
def test_end_to_end_from_a_run_directory(tmp_path, capsys):
    import flopdata

    flopdata.build("fmnist_scenes", data_dir=tmp_path / "data", num_examples=12, image_size=32)
    capsys.readouterr()  # TFDS's build messages
    run = tmp_path / "pretrain"
    runloop.write_files_atomic(run, vitcore.encoder_files(vitcore.create("vit-test", key=jr.key(0))))
    runloop.PretrainSummary(method="mae", model="vit-test", dataset="fmnist_objects", status="completed", steps=10,
                            batch_size=8, flops_per_step=3e8, total_flops=3e9, kg_co2e=1e-7).write(run / "summary.json")
    out = tmp_path / "det"
    argv = ["--encoder", str(run), "--dataset", "fmnist_scenes", "--data-dir", str(tmp_path / "data"), "--out",
            str(out), "--steps", "2", "--batch", "4", "--image-size", "32", "--log-every", "1"]
    assert finetune_det.main(argv) == 0
    result = segtransfer.DetectionResult.read(out / "result.json")
    assert (result.dataset, result.steps, result.batch_size, result.image_size, result.seeds) == (
        "fmnist_scenes", 2, 4, 32, [0])
    assert result.num_classes == 10 and result.eval_split == "test" and result.num_eval_images == 2  # 12 // 6
    assert result.finetune_flops == 2 * result.finetune_flops_per_step > 0
    assert result.encoder == segtransfer.EncoderInfo(kind="run", path=str(run.resolve()), method="mae",
                                                     model="vit-test", pretrain_dataset="fmnist_objects",
                                                     pretrain_steps=10, pretrain_flops=3e9, pretrain_kg_co2e=1e-7)
    assert json.loads(capsys.readouterr().out)["score"] == result.score
    assert report.main([str(out), "--out", str(out / "report")]) == 0
    rep = json.loads((out / "report" / "report.json").read_text())
    assert [(r["method"], r["task"], r["score"]) for r in rep["rows"]] == [
        ("mae", "fmnist_scenes detection", pytest.approx(result.score))]
    assert finetune_det.main(argv) == 2  # a finished result is not overwritten without --resume
    assert "already holds result.json; pass --resume" in capsys.readouterr().err
