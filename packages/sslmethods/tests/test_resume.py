"""A real training process killed mid-way (SIGTERM, then SIGKILL) and resumed ends exactly where an
uninterrupted run ends: same parameters, optimizer and method state, step, key and data position.

This file is also the worker: ``python test_resume.py OUT_DIR STEPS`` trains the toy method on one CPU device.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).parent
STEPS, EVERY = 40, 5


def _worker(out_dir: str, steps: int) -> None:
    sys.path.insert(0, str(HERE))
    from _engine_toys import SyntheticData, ToyTeacher
    from runloop import LoopConfig
    from sslmethods.pretrain.optim import OptimConfig
    from sslmethods.pretrain.trainer import TrainConfig, train_method

    class SlowData(SyntheticData):
        def __next__(self):
            time.sleep(0.05)  # slow enough for the test to interrupt mid-run
            return super().__next__()

    loop = LoopConfig(steps=steps, batch_size=8, checkpoint_every=EVERY, log_every=5, measure_flops=False)
    cfg = TrainConfig(out_dir=out_dir, loop=loop, resume=(Path(out_dir) / "config.json").exists())
    summary, _ = train_method(ToyTeacher(noise=0.1), OptimConfig(lr=1e-2, weight_decay=0.05, warmup_fraction=0.1),
                       SlowData(8), cfg)
    print(json.dumps({"status": summary.status, "steps": summary.steps}), flush=True)


def _spawn(out_dir: Path) -> subprocess.Popen:
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1", JAX_PLATFORMS="cpu")
    return subprocess.Popen([sys.executable, str(Path(__file__)), str(out_dir), str(STEPS)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _checkpoints(out_dir: Path) -> list[int]:
    d = out_dir / "checkpoints"
    return sorted(int(p.name) for p in d.iterdir() if p.name.isdigit()) if d.exists() else []


def _wait_for_checkpoint(proc: subprocess.Popen, out_dir: Path, at_least: int, timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if any(s >= at_least for s in _checkpoints(out_dir)):
            return
        if proc.poll() is not None:
            raise AssertionError(f"worker ended early ({proc.returncode}): {proc.stderr.read()[-3000:]}")
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"no checkpoint >= {at_least} within {timeout}s")


def _finish(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def _final_state(out_dir: Path):
    import equinox as eqx
    import jax
    import numpy as np

    sys.path.insert(0, str(HERE))
    from _engine_toys import ToyTeacher
    from runloop import Checkpointer
    from sslmethods.pretrain.optim import OptimConfig
    from sslmethods.pretrain.train_state import abstract_pretrain_state
    from sslmethods.pretrain.trainer import build_optimizer

    method = ToyTeacher(noise=0.1)
    tx, _ = build_optimizer(method, OptimConfig(lr=1e-2, weight_decay=0.05, warmup_fraction=0.1), STEPS)
    template, _ = abstract_pretrain_state(method, tx, (8, 8, 8, 1))
    with Checkpointer(out_dir / "checkpoints") as ckpt:
        restored = ckpt.restore(template)
    state, data_state = restored.state, restored.data_state
    leaves = [np.asarray(jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x)
              for x in jax.tree.leaves(eqx.filter(state, eqx.is_array))]
    return int(state.step), leaves, data_state


@pytest.mark.slow
def test_killed_and_resumed_run_matches_uninterrupted(tmp_path):
    import numpy as np

    reference = _spawn(tmp_path / "reference")

    interrupted = tmp_path / "interrupted"
    proc = _spawn(interrupted)
    _wait_for_checkpoint(proc, interrupted, 10)
    proc.send_signal(signal.SIGTERM)  # graceful: checkpoint the current step, exit 0
    assert _finish(proc)["status"] == "preempted"
    stopped_at = max(_checkpoints(interrupted))
    assert 10 <= stopped_at < STEPS

    proc = _spawn(interrupted)  # resumes, then dies without warning
    _wait_for_checkpoint(proc, interrupted, stopped_at + 2 * EVERY)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL

    assert _finish(_spawn(interrupted)) == {"status": "completed", "steps": STEPS}
    assert _finish(reference) == {"status": "completed", "steps": STEPS}

    step_a, leaves_a, data_a = _final_state(tmp_path / "reference")
    step_b, leaves_b, data_b = _final_state(interrupted)
    assert step_a == step_b == STEPS and data_a == data_b == {"index": STEPS, "seed": 0}
    assert len(leaves_a) == len(leaves_b)
    for a, b in zip(leaves_a, leaves_b, strict=True):
        np.testing.assert_array_equal(a, b)
    # The resumed run's log has each step once and ends at the last step.
    steps = [json.loads(line)["step"] for line in (interrupted / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == STEPS


if __name__ == "__main__":
    _worker(sys.argv[1], int(sys.argv[2]))
