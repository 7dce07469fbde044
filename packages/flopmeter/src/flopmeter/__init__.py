"""Per-step FLOPs from compiled XLA programs, timing, MFU and the energy/CO2 model (depends on jax only)."""

from flopmeter.analytic import (
    macs_to_flops,
    mae_forward_macs,
    mae_kept_patches,
    num_patches,
    patch_embed_macs,
    text_encoder_macs,
    transformer_block_macs,
    vit_forward_macs,
    vit_train_macs,
)
from flopmeter.analytic_convnet import conv2d_macs, nfnet_forward_macs, nfnet_train_macs
from flopmeter.co2 import (
    STUDY_CHIPS,
    STUDY_HARDWARE,
    STUDY_REGION,
    Footprint,
    PowerLawFit,
    co2_kg,
    energy_kwh,
    fit_power_law,
    footprint,
)
from flopmeter.convention import FLOPS_CONVENTIONS, FlopCount, check_convention, convention_label
from flopmeter.cost import Cost
from flopmeter.data_tables import Hardware, HardwareTable, Region, RegionTable, hardware, region
from flopmeter.energy_tracker import TrackedEnergy, track_energy
from flopmeter.hlo_loops import LibraryCall, LoopCounts, WhileLoop, count_hlo
from flopmeter.host_memory import reuse_host_memory
from flopmeter.library_calls import CallCost, library_call_cost
from flopmeter.measure import (
    cost_from_compiled,
    cost_from_lowered,
    lower_abstract,
    measure,
    measure_lowered,
    normalise_cost_analysis,
)
from flopmeter.pareto import crossover_cost, pareto_front
from flopmeter.timing import DEFAULT_PEAK_SHAPES, PeakFlops, PeakTrial, mfu, peak_flops, time_step

# The one place the version is written (pyproject.toml reads it: [tool.setuptools.dynamic]).
__version__ = "0.2.0"

__all__ = [
    "DEFAULT_PEAK_SHAPES",
    "FLOPS_CONVENTIONS",
    "STUDY_CHIPS",
    "STUDY_HARDWARE",
    "STUDY_REGION",
    "CallCost",
    "conv2d_macs",
    "nfnet_forward_macs",
    "nfnet_train_macs",
    "Cost",
    "FlopCount",
    "LibraryCall",
    "Footprint",
    "Hardware",
    "HardwareTable",
    "LoopCounts",
    "PeakFlops",
    "PeakTrial",
    "PowerLawFit",
    "Region",
    "RegionTable",
    "TrackedEnergy",
    "WhileLoop",
    "check_convention",
    "co2_kg",
    "convention_label",
    "cost_from_compiled",
    "cost_from_lowered",
    "count_hlo",
    "crossover_cost",
    "energy_kwh",
    "fit_power_law",
    "footprint",
    "hardware",
    "library_call_cost",
    "lower_abstract",
    "macs_to_flops",
    "mae_forward_macs",
    "mae_kept_patches",
    "measure",
    "measure_lowered",
    "mfu",
    "normalise_cost_analysis",
    "num_patches",
    "patch_embed_macs",
    "pareto_front",
    "peak_flops",
    "region",
    "reuse_host_memory",
    "text_encoder_macs",
    "time_step",
    "track_energy",
    "transformer_block_macs",
    "vit_forward_macs",
    "vit_train_macs",
]
