"""flopwise-profile (sslmethods.cli.profile_flops, tools/profile_flops.py): a user's method by import path
(measured and analytic FLOPs through the protocol), the JSON contract of docs/design.md section 2, and flags that do not
apply to the method are errors."""

import argparse
import json
import sys
from pathlib import Path

import pytest
from sslmethods.cli import profile_flops as tool_module

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = ("flops_per_step", "macs_per_step", "analytic_flops_per_step", "params", "compile_seconds")


@pytest.fixture(scope="module")
def tool():
    return tool_module


def _fails(tool, capsys, argv, expected):
    assert tool.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert expected in err, err


def test_flags_that_do_not_apply_to_the_method_are_errors(tool, capsys):
    base = ["--model", "vit-test", "--batch", "2", "--json"]
    _fails(tool, capsys, ["--method", "simclr", "--mask-ratio", "0.5", *base],
           "--mask-ratio does not apply to --method simclr (SimCLR has no field 'mask_ratio'; its fields: "
           "temperature, proj_hidden_dim")
    _fails(tool, capsys, ["--method", "mae", "--text-encoder", "medium", *base],
           "--text-encoder does not apply to --method mae (MAE has no field 'text_encoder'")
    _fails(tool, capsys, ["--method", "no_such_module:Method", *base],
           "method='no_such_module:Method': cannot import module 'no_such_module'")
    _fails(tool, capsys, ["--method", "simclr", "--model", "vit-test"], "--batch is required (or --table)")


def test_flags_set_the_fields_of_the_same_name(tool):
    def overrides(method, **flags):
        args = argparse.Namespace(method=method, **({"mask_ratio": None, "decoder_depth": None,
                                                     "text_encoder": None} | flags))
        return tool.overrides_for(args)

    assert overrides("mae", mask_ratio=0.65, decoder_depth=1) == {"mask_ratio": 0.65, "decoder_depth": 1}
    assert overrides("clip", text_encoder="medium") == {"text_encoder": "text-medium"}
    assert overrides("dino") == {}


def test_a_row_names_its_variant(monkeypatch):
    # Readers of the --table JSON (flopstudy's Figure 3) label rows by the variant fields at the top level.
    from sslmethods.costs import step_cost

    fake = {"flops_per_step": 2.0, "macs_per_step": 1.0, "analytic_flops_per_step": 1.0,
            "analytic_macs_per_step": 0.5, "params": 1, "compile_seconds": 0.0, "notes": []}
    monkeypatch.setattr(step_cost, "step_cost", lambda method, optim, batch, **options: fake)
    row = step_cost.profile("mae", "vit-test", 2, method_overrides={"mask_ratio": 0.5, "decoder_depth": 1})
    assert (row["mask_ratio"], row["decoder_depth"]) == (0.5, 1)
    assert row["overrides"] == {"mask_ratio": 0.5, "decoder_depth": 1} and row["image_size"] == 32


def test_a_user_method_by_import_path(tool, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "packages" / "sslmethods" / "examples"))
    assert tool.main(["--method", "simsiam:SimSiam", "--model", "vit-test", "--batch", "4", "--json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1  # one JSON object on one line
    row = json.loads(out)
    assert all(row[key] > 0 for key in CONTRACT), row
    import simsiam
    import vitcore

    method = simsiam.SimSiam(backbone=vitcore.get_config("vit-test"), total_steps=250_000)
    assert row["analytic_flops_per_step"] == 2 * method.analytic_macs(4)
    # The closed form counts the encoder only: the compiled step (heads, optimizer, augmentation) is larger.
    assert row["flops_per_step"] > row["analytic_flops_per_step"]
    assert row["macs_per_step"] == pytest.approx(row["flops_per_step"] / 2)
    assert (row["method"], row["model"], row["batch"], row["image_size"]) == ("simsiam:SimSiam", "vit-test", 4, 32)
    sys.modules.pop("simsiam", None)
