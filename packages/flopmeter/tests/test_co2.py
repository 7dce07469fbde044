"""CO2 model: the study's worked example, the log-space power-law fit, and the sourced, extendable tables."""

import csv
import importlib.util

import flopmeter
import numpy as np
import pytest


def test_worked_example_32_tpuv3_for_10_hours():
    kwh = flopmeter.energy_kwh(chips=32, hours=10)  # 283 W per TPUv3 chip from the hardware table
    assert kwh == pytest.approx(90.56)
    assert flopmeter.co2_kg(kwh) == pytest.approx(24.2, abs=0.05)  # gcp europe-west1, 267 g/kWh
    assert flopmeter.energy_kwh(chips=32, hours=10, pue=1.09) == pytest.approx(90.56 * 1.09)


def test_power_law_fit_recovers_exact_parameters():
    flops = np.array([1e12, 3e12, 1e13, 5e13, 2e14])
    steps_per_second = 7.5e5 * flops**-0.62
    fit = flopmeter.fit_power_law(flops, steps_per_second)
    assert fit.a == pytest.approx(7.5e5, rel=1e-9) and fit.b == pytest.approx(-0.62, rel=1e-9)
    assert fit.r_squared == pytest.approx(1.0)
    assert fit.hours(1e13, 3600) == pytest.approx(3600 / (7.5e5 * 1e13**-0.62) / 3600)


def test_power_law_r_squared_against_numpy_reference():
    rng = np.random.default_rng(1)
    x = np.geomspace(1e11, 1e14, 12)
    y = 2e4 * x**-0.5 * np.exp(0.1 * rng.standard_normal(12))
    fit = flopmeter.fit_power_law(list(x), list(y))
    lx, ly = np.log(x), np.log(y)
    r = np.corrcoef(lx, ly)[0, 1]
    assert fit.r_squared == pytest.approx(r * r, rel=1e-9) and fit.r_squared < 1.0
    with pytest.raises(ValueError, match="flops_per_step"):
        flopmeter.fit_power_law([1e12, 1e12], [1.0, 2.0])
    with pytest.raises(ValueError, match="positive"):
        flopmeter.fit_power_law([1e12, 2e12], [1.0, -2.0])


def test_footprint_chains_time_energy_co2():
    fit = flopmeter.PowerLawFit(a=1.0, b=0.0, r_squared=1.0)  # 1 step per second
    result = flopmeter.footprint(fit, flops_per_step=1e12, steps=36000, chips=32)
    assert result.hours == pytest.approx(10.0) and result.kwh == pytest.approx(90.56)
    assert result.kg_co2e == pytest.approx(90.56 * 267 / 1000)
    with_pue = flopmeter.footprint(fit, flops_per_step=1e12, steps=36000, chips=32, use_pue=True)
    assert with_pue.kwh == pytest.approx(90.56 * 1.09)


def test_tables_have_sources_and_requested_rows():
    hardware = flopmeter.HardwareTable.shipped()
    for name in (
        "tpu-v2",
        "tpu-v3",
        "tpu-v4",
        "tpu-v5e",
        "tpu-v5p",
        "v100-sxm2",
        "a100-sxm4",
        "h100-sxm",
        "h200-sxm",
    ):
        assert name in hardware and hardware[name].source and hardware[name].peak_flops > 1e13
    assert all(row.source for row in hardware.rows())
    # Datasheet figures: dense bf16 per chip, and power where a source gives one.
    assert hardware["tpu-v3"].watts == 283 and hardware["tpu-v3"].peak_flops == 123e12
    assert hardware["tpu-v4"].watts == 170 and hardware["tpu-v4"].peak_flops == 275e12
    assert hardware["h100-sxm"].peak_flops == pytest.approx(989.4e12) and hardware["h100-sxm"].watts == 700
    assert hardware["a100-sxm4"].peak_flops == 312e12 and hardware["tpu-v5e"].watts is None
    regions = flopmeter.RegionTable.shipped()
    assert regions["gcp:europe-west1"].gco2e_per_kwh == 267 and regions["gcp:europe-west1"].pue == 1.09
    assert all(r.source for r in regions.rows())


def test_user_rows_live_in_the_callers_table_only(tmp_path):
    # The bug this replaces: registering one row first made the shipped rows unknown, and the rows leaked
    # into every later caller. Tables are values now: the user's rows extend a copy of the shipped table.
    mine = flopmeter.Hardware("my-gpu", peak_flops=1e14, watts=250, source="vendor datasheet")
    table = flopmeter.HardwareTable.shipped().with_rows(mine)
    assert flopmeter.hardware("tpu-v3", table=table).watts == 283 and table["my-gpu"] is mine
    assert flopmeter.energy_kwh(chips=2, hours=2, hardware_name="my-gpu", hardware_table=table) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="hardware='my-gpu' is unknown"):
        flopmeter.hardware("my-gpu")  # the shipped table is untouched
    assert "my-gpu" not in flopmeter.HardwareTable.shipped()
    # A replaced row wins in the new table only.
    faster = flopmeter.Hardware("tpu-v3", peak_flops=2e14, watts=300, source="a later measurement")
    assert flopmeter.HardwareTable.shipped().with_rows(faster)["tpu-v3"].watts == 300
    assert flopmeter.hardware("tpu-v3").watts == 283

    path = tmp_path / "mine.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["region", "gco2e_per_kwh", "pue", "source"])
        writer.writerow(["lab:basement", "100", "1.5", "our utility bill 2025"])
    regions = flopmeter.RegionTable.shipped().with_csv(path)
    assert flopmeter.co2_kg(10.0, region_name="lab:basement", region_table=regions) == pytest.approx(1.0)
    assert flopmeter.co2_kg(10.0, region_table=regions) == pytest.approx(10.0 * 267 / 1000)  # shipped row kept
    assert list(flopmeter.RegionTable.from_csv(path)) == ["lab:basement"]
    with pytest.raises(ValueError, match="region='lab:basement' is unknown"):
        flopmeter.region("lab:basement")
    with pytest.raises(ValueError, match="source"):
        flopmeter.Region("x", gco2e_per_kwh=1, pue=None, source="")
    with pytest.raises(ValueError, match="no power figure"):
        flopmeter.energy_kwh(chips=1, hours=1, hardware_name="tpu-v5e")


@pytest.mark.parametrize(
    ("device_kind", "name"),
    [
        ("TPU v3", "tpu-v3"),
        ("TPU v4", "tpu-v4"),
        ("TPU v5 lite", "tpu-v5e"),
        ("TPU v5", "tpu-v5p"),
        ("Tesla V100-SXM2-16GB", "v100-sxm2"),
        ("NVIDIA A100-SXM4-80GB", "a100-sxm4"),
        ("NVIDIA A100 80GB PCIe", "a100-pcie"),
        ("NVIDIA H100 80GB HBM3", "h100-sxm"),
        ("NVIDIA H200", "h200-sxm"),  # as JAX named the H200 this package was tested on
        ("NVIDIA H100 PCIe", None),  # no row: a different peak and power
        ("cpu", None),
    ],
)
def test_hardware_for_jax_device_kind(device_kind, name):
    row = flopmeter.HardwareTable.shipped().for_device_kind(device_kind)
    assert (row.name if row else None) == name
    ambiguous = flopmeter.HardwareTable.shipped().with_rows(
        flopmeter.Hardware("any-tpu", peak_flops=1e14, watts=None, source="test", device_kind="TPU")
    )
    if name is not None and name.startswith("tpu"):
        with pytest.raises(ValueError, match="matches several hardware rows"):
            ambiguous.for_device_kind(device_kind)


@pytest.mark.skipif(importlib.util.find_spec("codecarbon") is None, reason="codecarbon is optional")
def test_codecarbon_tracker_measures_something():
    with flopmeter.track_energy(log_level="error") as measured:
        sum(i * i for i in range(200_000))
    assert measured.kwh is not None and measured.kwh >= 0


def test_track_energy_without_codecarbon_says_how_to_install():
    if importlib.util.find_spec("codecarbon") is not None:
        pytest.skip("codecarbon is installed")
    with pytest.raises(ImportError, match="pip install codecarbon"):
        with flopmeter.track_energy():
            pass
