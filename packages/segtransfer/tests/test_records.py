"""The transfer studies' records: JSON round trips with today's keys, range checks that name the file, and the
studies' readers (`read_segmentation`, `read_detection`)."""

import json

import pytest
from segtransfer import DetectionResult, EncoderInfo, FinetuneResult, read_detection, read_segmentation


def _result(**kw):
    base = dict(dataset="tiny", miou=0.5, aacc=0.75, iou=[0.5, None], finetune_flops=6.0, finetune_flops_per_step=2.0,
                finetune_flops_all_runs=12.0, finetune_macs_per_step=1.0, steps=3, warmup_steps=1, batch_size=4,
                image_size=32, lr=1e-3, wd=0.05, seeds=[0], per_seed_miou=[0.5], eval_mode="center_crop",
                eval_split="test", num_classes=2, encoder=EncoderInfo(kind="scratch", model="vit-test",
                                                                      pretrain_flops=0.0, pretrain_steps=0))
    return FinetuneResult(**{**base, **kw})


def test_round_trip_keeps_the_json_keys():
    result = _result()
    data = result.to_json()
    assert "grid" not in data and data["encoder"]["kind"] == "scratch" and data["iou"] == [0.5, None]
    assert FinetuneResult.from_json(json.loads(json.dumps(data))) == result
    with_grid = _result(grid=[{"lr": 1e-3, "wd": 0.05, "miou": 0.5}])
    assert FinetuneResult.from_json(with_grid.to_json()).grid == with_grid.grid


@pytest.mark.parametrize(("change", "message"), [
    ({"miou": 5.0}, r"miou=5.0; expected a value in \[0, 1\]"),
    ({"finetune_flops": -1.0}, r"finetune_flops=-1.0; expected a value in \[0, inf\]"),
    ({"iou": [1.5]}, r"iou\[0\]=1.5"),
    ({"per_seed_miou": [0.5, 0.4]}, "one mIoU per seed"),
])
def test_out_of_range_results_name_the_file(tmp_path, change, message):
    path = tmp_path / "result.json"
    path.write_text(json.dumps({**_result().to_json(), **change}))
    with pytest.raises(ValueError, match=rf"{path} is not a valid fine-tuning result \(.*{message}"):
        FinetuneResult.read(path)


def test_a_scratch_encoder_has_no_pretraining_flops():
    with pytest.raises(ValueError, match="a scratch encoder has 0 pre-training FLOPs"):
        EncoderInfo(kind="scratch", pretrain_flops=None)


def _detection(**kw):
    base = dict(dataset="fmnist_scenes", score=12.5, box={"AP": 12.5, "AP50": 30.0, "AP75": 10.0, "APs": None},
                mask={"AP": 11.0, "AP50": 28.0}, seeds=[0, 1], per_seed_box_ap=[10.0, 15.0],
                per_seed_mask_ap=[10.0, 12.0], finetune_flops=4e12, finetune_flops_per_step=1e10,
                finetune_flops_all_runs=8e12, finetune_macs_per_step=5e9, steps=400, warmup_steps=5, batch_size=16,
                image_size=64, lr=3e-4, wd=0.1, layer_decay=None, num_classes=10, eval_split="test",
                num_eval_images=166, encoder=EncoderInfo(kind="scratch", model="vit-test", pretrain_flops=0.0))
    return DetectionResult(**{**base, **kw})


def test_detection_result_round_trip_and_checks(tmp_path):
    data = _detection().to_json()
    assert data["task"] == "detection" and data["score_metric"] == "box AP" and data["box"]["APs"] is None
    assert DetectionResult.from_json(json.loads(json.dumps(data))) == _detection()
    assert DetectionResult.from_json(data | {"box": {"AP": 12.5}, "mask": {"AP": 11}}).mask == {"AP": 11.0}
    path = tmp_path / "result.json"
    for change, message in [({"score": 15.0}, r"score=15.0; expected box.AP=12.5"),
                            ({"per_seed_box_ap": [10.0]}, r"expected one AP per seed"),
                            ({"box": {"AP": 12.5, "AP50": 130.0}}, r"box.AP50=130.0; expected a value in \[0, 100\]"),
                            ({"mask": {"AP50": 1.0}}, r"mask=\{'AP50': 1.0\}; expected an object with 'AP'"),
                            ({"task": "segmentation"}, r"task='segmentation', score_metric='box AP'")]:
        path.write_text(json.dumps(data | change))
        with pytest.raises(ValueError, match=rf"{path} is not a valid detection result \(.*{message}"):
            DetectionResult.read(path)


def test_each_study_reads_its_own_result_back_and_names_the_file_of_another(tmp_path):
    assert read_detection(tmp_path) is None and read_segmentation(tmp_path) is None  # no result yet
    path = tmp_path / "result.json"
    _detection().write(path)
    assert read_detection(tmp_path) == json.loads(path.read_text()) == _detection().to_json()
    with pytest.raises(ValueError, match=rf"{path} is not a valid fine-tuning result"):
        read_segmentation(tmp_path)
    _result().write(path)
    assert read_segmentation(tmp_path) == _result().to_json()
    with pytest.raises(ValueError, match=rf"{path} is not a valid detection result"):
        read_detection(tmp_path)
