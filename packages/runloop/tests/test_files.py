"""Atomic files and the one strict JSON converter: numbers, arrays, NaN -> null, unknown objects refused."""

import json
import os
import stat

import jax.numpy as jnp
import numpy as np
import pytest
from runloop import to_jsonable, write_bytes_atomic, write_files_atomic, write_json_atomic


def test_converter_numbers_arrays_and_nan():
    value = {"a": np.float32(0.5), "b": jnp.int32(3), "c": np.array([[1, 2], [3, 4]]), "d": (np.nan, np.inf),
             "e": np.bool_(True), 7: jnp.array([0.25, jnp.nan]), "f": None}
    assert to_jsonable(value) == {"a": 0.5, "b": 3, "c": [[1, 2], [3, 4]], "d": [None, None], "e": True,
                                  "7": [0.25, None], "f": None}


def test_converter_refuses_unknown_objects(tmp_path):
    with pytest.raises(TypeError, match=r"value\['path'\]=PosixPath.*is a PosixPath; expected JSON data"):
        to_jsonable({"path": tmp_path})
    with pytest.raises(TypeError, match=r"has the key \(1, 2\)"):
        to_jsonable({(1, 2): 3})
    with pytest.raises(TypeError, match="array of <U1"):
        to_jsonable(np.array(["a", "b"]))
    # a failed write leaves the old file as it was, and no temporary file
    write_json_atomic(tmp_path / "r.json", {"ok": 1})
    with pytest.raises(TypeError, match="object"):
        write_json_atomic(tmp_path / "r.json", {"bad": object()})
    assert json.loads((tmp_path / "r.json").read_text()) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_files_get_the_umask_mode_and_no_temporaries(tmp_path):
    old = os.umask(0o027)
    try:
        write_bytes_atomic(tmp_path / "sub" / "a.bin", b"\x00\x01")
        write_json_atomic(tmp_path / "b.json", {"x": 1.5})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "sub" / "a.bin").stat().st_mode) == 0o640  # 0o666 & ~0o027, not mkstemp's 0600
    assert stat.S_IMODE((tmp_path / "b.json").stat().st_mode) == 0o640
    assert (tmp_path / "b.json").read_text() == '{\n  "x": 1.5\n}\n'
    write_files_atomic(tmp_path / "enc", {"w.bin": b"w", "c.json": b"{}"})
    assert sorted(p.name for p in (tmp_path / "enc").iterdir()) == ["c.json", "w.bin"]
    with pytest.raises(ValueError, match="plain file names"):
        write_files_atomic(tmp_path, {"../x": b""})
