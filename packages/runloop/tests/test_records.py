"""The engine's typed record: the pre-training summary's JSON round trip with today's keys, and range checks
that name the file."""

import json

import pytest
from runloop import PretrainSummary


def _summary(**kw):
    base = dict(method="mae", model="vit-test", dataset="fmnist_objects", status="completed", steps=10, batch_size=8,
                flops_per_step=2.0e9, total_flops=2.0e10)
    return PretrainSummary(**{**base, **kw})


def test_round_trip_keeps_the_json_keys(tmp_path):
    summary = _summary(knn=[{"step": 10, "knn_top1": 0.25}], final_metrics={"loss": 0.5})
    summary.write(tmp_path / "summary.json")
    data = json.loads((tmp_path / "summary.json").read_text())
    assert data["total_flops"] == 2.0e10 and data["knn"] == [{"step": 10, "knn_top1": 0.25}]
    assert PretrainSummary.read(tmp_path / "summary.json") == summary


def test_summary_checks(tmp_path):
    with pytest.raises(ValueError, match=r"total_flops=10000000000.0; expected flops_per_step x steps = "
                                         r"2000000000.0 x 10"):
        _summary(total_flops=1.0e10)
    with pytest.raises(ValueError, match="status='done'"):
        _summary(status="done")
    path = tmp_path / "summary.json"
    path.write_text(json.dumps({"method": "mae", "model": "vit-test"}))
    with pytest.raises(ValueError, match=r"not a valid pre-training summary \(missing fields \['dataset', 'status'"):
        PretrainSummary.read(path)
    path.write_text(json.dumps({**_summary().to_json(), "flops": 1}))
    with pytest.raises(ValueError, match=r"unknown fields \['flops'\]"):
        PretrainSummary.read(path)
