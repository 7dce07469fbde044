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
from flopmeter.co2 import Footprint, PowerLawFit, co2_kg, energy_kwh, fit_power_law, footprint
from flopmeter.cost import Cost
from flopmeter.data_tables import (
    Hardware,
    Region,
    hardware,
    load_hardware_table,
    load_region_table,
    region,
    register_hardware,
    register_region,
)
from flopmeter.energy_tracker import TrackedEnergy, track_energy
from flopmeter.hlo_loops import LoopCounts, WhileLoop, count_hlo
from flopmeter.host_memory import reuse_host_memory
from flopmeter.measure import cost_from_compiled, measure, normalise_cost_analysis
from flopmeter.pareto import crossover_cost, pareto_front
from flopmeter.timing import mfu, peak_flops, time_step

__all__ = [
    "Cost",
    "Footprint",
    "Hardware",
    "LoopCounts",
    "PowerLawFit",
    "Region",
    "TrackedEnergy",
    "WhileLoop",
    "co2_kg",
    "cost_from_compiled",
    "count_hlo",
    "crossover_cost",
    "energy_kwh",
    "fit_power_law",
    "footprint",
    "hardware",
    "load_hardware_table",
    "load_region_table",
    "macs_to_flops",
    "mae_forward_macs",
    "mae_kept_patches",
    "measure",
    "mfu",
    "normalise_cost_analysis",
    "num_patches",
    "patch_embed_macs",
    "pareto_front",
    "peak_flops",
    "region",
    "register_hardware",
    "register_region",
    "reuse_host_memory",
    "text_encoder_macs",
    "time_step",
    "track_energy",
    "transformer_block_macs",
    "vit_forward_macs",
    "vit_train_macs",
]
