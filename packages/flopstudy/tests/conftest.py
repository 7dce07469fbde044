"""Hand-made result rows for the flopstudy tests."""

import pytest
from flopstudy import ResultRow


def _row(**fields) -> ResultRow:
    record = {"method": "mae", "variant": "", "backbone": "vit-b16", "pretrain_dataset": "i1k",
              "pretrain_steps": 100, "pretrain_flops": 1e18, "task": "seg", "seed": 0, "score": 40.0,
              "status": "done"} | fields
    return ResultRow.from_record(record)


@pytest.fixture
def make_row():
    """``make_row(**columns)``: a valid row (mae, vit-b16, i1k, 100 steps, 1e18 FLOPs, seg, seed 0, 40%)."""
    return _row
