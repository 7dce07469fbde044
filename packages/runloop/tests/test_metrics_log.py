"""metrics.jsonl on resume: records past the resumed step dropped, a partial last line dropped, damage refused."""

import json

import numpy as np
import pytest
from runloop import MetricsLog, read_metrics


def _steps(path):
    return [json.loads(line)["step"] for line in path.read_text().splitlines()]


def test_resume_drops_later_records_and_a_partial_last_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    log = MetricsLog(path, resume_step=0)
    for s in (5, 10, 15):
        log.write({"step": s, "loss": np.float32(s / 20), "lr": np.nan})
    log.close()
    assert json.loads(path.read_text().splitlines()[0]) == {"step": 5, "loss": 0.25, "lr": None}
    with path.open("a") as f:
        f.write('{"step": 20, "lo')  # killed mid-line
    with pytest.warns(RuntimeWarning, match="dropped a partial last line"):
        log = MetricsLog(path, resume_step=10)  # resumed from the checkpoint of step 10
    log.write({"step": 11, "loss": 0.5})
    log.close()
    assert _steps(path) == [5, 10, 11]


def test_a_damaged_middle_line_is_an_error(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1}\nnot json\n{"step": 3}\n')
    with pytest.raises(ValueError, match=r"metrics.jsonl line 2 is not a JSON record"):
        read_metrics(path)
    with pytest.raises(ValueError, match="integer 'step'"):
        MetricsLog(tmp_path / "m2.jsonl", resume_step=0).write({"loss": 1.0})
