"""The commands that train (and a sweep's worker processes) call `flopmeter.reuse_host_memory()` before any JAX
work, so XLA:CPU reuses its step buffers without the user asking (docs/benchmarks.md measures what it saves)."""

from __future__ import annotations

import concurrent.futures
import importlib

import flopmeter
import pytest
from flopstudy.sweep.executors import LocalExecutor

COMMANDS = ["sslmethods.cli.pretrain", "segtransfer.cli.finetune_seg", "segtransfer.cli.finetune_det",
            "segtransfer.cli.probe_layers", "flopstudy.cli.sweep", "flopstudy.cli.demo"]


@pytest.mark.parametrize("module", COMMANDS)
def test_each_training_command_reuses_host_memory_before_it_parses(module, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(flopmeter, "reuse_host_memory", lambda: calls.append(module) or True)
    command = importlib.import_module(module)
    assert command.main(["--help"]) == 0  # nothing runs, but the process is already set up
    assert calls == [module]


def test_a_sweeps_worker_processes_reuse_host_memory(monkeypatch, tmp_path):
    seen = {}

    class Pool:  # records how the executor builds its pool; runs nothing
        def __init__(self, workers, **kwargs):
            seen.update(kwargs, workers=workers)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def submit(self, *args):
            raise AssertionError("no job was given")

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", Pool)
    assert LocalExecutor(2).run([], object(), lambda outcome: None, log=print) == []
    assert seen["workers"] == 2 and seen["initializer"] is flopmeter.reuse_host_memory
