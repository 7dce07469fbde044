"""`python -m flopmeter module:function --arg-shapes ...`."""

import json
import subprocess
import sys

import jax.numpy as jnp
import pytest
from flopmeter.cli import main, parse_shape


def test_parse_shape():
    spec = parse_shape("bf16[8,224,224,3]")
    assert spec.shape == (8, 224, 224, 3) and spec.dtype == jnp.bfloat16
    assert parse_shape("float32[]").shape == ()
    with pytest.raises(ValueError, match="dtype"):
        parse_shape("f32(8)")


def test_main_prints_json(capsys):
    assert main(["jax.numpy:matmul", "--arg-shapes", "f32[64,32]", "f32[32,16]", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["flops"] == 2 * 64 * 32 * 16 and data["macs"] == 64 * 32 * 16


def test_main_prints_table(capsys):
    assert main(["jax.numpy:matmul", "--arg-shapes", "f32[8,8]", "f32[8,8]"]) == 0
    assert "1.024 kFLOP" in capsys.readouterr().out


def test_module_entry_point():
    out = subprocess.run(
        [sys.executable, "-m", "flopmeter", "jax.numpy:tanh", "--arg-shapes", "f32[10,10]", "--json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert json.loads(out.stdout)["transcendentals"] == 100


def test_bad_target_is_one_error_line(capsys):
    assert main(["jax.numpy.matmul"]) == 2
    assert capsys.readouterr().err == ("error: target 'jax.numpy.matmul' is invalid; expected module:function, e.g. "
                                       "mypkg.model:forward\n")
