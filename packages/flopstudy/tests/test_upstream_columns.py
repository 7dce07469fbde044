"""The table's upstream columns from a pre-training summary: the held-out loss and accuracy where the run recorded
them, the last batch's loss and the kNN accuracy (labelled) where it did not; the upstream laws count the latter."""

import pytest
from flopstudy import ResultRow, fit_upstream_laws
from flopstudy.results.upstream_columns import upstream_columns


def test_heldout_values_win_and_older_runs_fall_back_labelled():
    new = {"final_metrics": {"loss": 3.0, "heldout_loss": 2.5, "heldout_accuracy": 0.42},
           "knn": [{"step": 10, "knn_top1": 0.3}]}
    assert upstream_columns(new) == {"upstream_loss": 2.5, "upstream_loss_source": "heldout",
                                     "upstream_accuracy": pytest.approx(42.0), "upstream_accuracy_source": "heldout"}
    ssl = {"final_metrics": {"loss": 3.0, "heldout_loss": 2.5}, "knn": [{"step": 5, "knn_top1": 0.2},
                                                                          {"step": 10, "knn_top1": 0.3}]}
    assert upstream_columns(ssl)["upstream_accuracy"] == pytest.approx(30.0)
    assert upstream_columns(ssl)["upstream_accuracy_source"] == "knn"
    old = {"final_metrics": {"loss": 3.0}}
    assert upstream_columns(old) == {"upstream_loss": 3.0, "upstream_loss_source": "last batch",
                                     "upstream_accuracy": None, "upstream_accuracy_source": None}
    assert upstream_columns({})["upstream_loss"] is None


def _row(flops, loss, source):
    return ResultRow.from_record({"method": "mae", "variant": "", "backbone": "vit-b16", "pretrain_dataset": "i1k",
                                  "pretrain_steps": int(flops / 1e12), "pretrain_flops": flops, "task": "seg",
                                  "seed": 0, "score": 40.0, "status": "done", "upstream_loss": loss,
                                  "upstream_loss_source": source})


def test_upstream_laws_say_how_many_losses_are_not_heldout():
    rows = [_row(1e15, 2.0, "heldout"), _row(2e15, 1.8, "heldout"), _row(4e15, 1.6, "last batch")]
    (law,) = fit_upstream_laws(rows, n_boot=10)
    assert "1 of 3 run(s) recorded no held-out loss" in law.note
    assert [p.heldout for p in law.points] == [True, True, False]
    (clean,) = fit_upstream_laws(rows[:2], n_boot=10)
    assert "held-out" not in clean.note
