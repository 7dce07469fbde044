"""`--tensorboard` on tools/pretrain.py and tools/finetune_seg.py: event files next to metrics.jsonl hold the same
scalars at the same steps, and both tools print the one progress line of runloop.

The event files are read back with our own TFRecord framing reader and TensorBoard's ``Event`` protobuf schema (the
copy tensorboardX ships), not through the writer.
"""

import json
import re
import struct
from pathlib import Path

import finetune_seg  # tools/ is on sys.path via tests/conftest.py
import pretrain
import pytest

FMNIST = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
# runloop.Progress.line, prefixed by the run directory's name.
PROGRESS = re.compile(r"^\S+: step (\d+)/(\d+) \| loss \d+\.\d{4} \| (\S+ img/s|img/s -) \| ETA (\d+:\d\d:\d\d|-) \| "
                      r"(\S+ FLOPs|FLOPs n/a) \| (\S+ kgCO2e|CO2 n/a \(set hardware/watts\))$", re.M)


def read_scalars(folder: Path) -> dict[str, dict[int, float]]:
    """tag -> {step: value} over every event file in ``folder`` (TFRecord: length u64, crc u32, data, crc u32)."""
    from tensorboardX.proto.event_pb2 import Event

    scalars: dict[str, dict[int, float]] = {}
    files = sorted(folder.glob("events.out.tfevents.*"))
    assert files, f"no event file in {folder}"
    for path in files:
        data, offset = path.read_bytes(), 0
        while offset < len(data):
            (length,) = struct.unpack_from("<Q", data, offset)
            event = Event.FromString(data[offset + 12: offset + 12 + length])
            offset += 12 + length + 4
            for value in event.summary.value:
                scalars.setdefault(value.tag, {})[event.step] = value.simple_value
    return scalars


def assert_mirrors_metrics(run_dir: Path, tags: tuple[str, ...]) -> None:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    scalars = read_scalars(run_dir / "tensorboard")
    for tag in tags:
        expected = {r["step"]: r[tag] for r in records if isinstance(r.get(tag), float)}
        assert expected, (tag, records)
        assert scalars[tag].keys() == expected.keys(), (tag, scalars[tag], expected)
        for step, value in expected.items():
            assert scalars[tag][step] == pytest.approx(value, rel=1e-6), (tag, step)  # float32 in the event


@pytest.mark.slow  # two tiny runs (compile + 2 steps + eval each): ~40 s of CPU, 2 min wall on the shared 2 cores
@pytest.mark.skipif(not FMNIST.exists(), reason="Fashion-MNIST (Debian dataset-fashion-mnist) is not installed")
def test_pretrain_and_finetune_write_tensorboard_events(tmp_path, capsys):
    import flopdata

    data = tmp_path / "data"
    objects = flopdata.build("fmnist_objects", data_dir=data, num_examples=32, image_size=32)
    flopdata.build("fmnist_scenes", data_dir=data, num_examples=24, image_size=32)
    capsys.readouterr()  # the builders' progress bars

    run = tmp_path / "mae"
    pretrain.main(["--method", "mae", "--model", "vit-test", "--dataset", str(objects), "--steps", "2", "--batch",
                   "8", "--log-every", "1", "--out", str(run), "--tensorboard"])
    printed = capsys.readouterr()
    pretrain_lines = PROGRESS.findall(printed.out + printed.err)
    assert_mirrors_metrics(run, ("loss", "images_per_second"))

    seg = tmp_path / "seg"
    finetune_seg.main(["--encoder", str(run), "--dataset", "fmnist_scenes", "--data-dir", str(data), "--out",
                       str(seg), "--steps", "2", "--batch", "4", "--image-size", "32", "--log-every", "1",
                       "--tensorboard"])
    printed = capsys.readouterr()
    finetune_lines = PROGRESS.findall(printed.out + printed.err)
    (seg_run,) = [p.parent for p in seg.rglob("metrics.jsonl")]
    assert_mirrors_metrics(seg_run, ("loss", "images_per_second", "miou"))

    # One progress format: every logged step of both tools printed it.
    assert [(int(s), int(t)) for s, t, *_ in pretrain_lines] == [(1, 2), (2, 2)]
    assert [(int(s), int(t)) for s, t, *_ in finetune_lines] == [(1, 2), (2, 2)]
