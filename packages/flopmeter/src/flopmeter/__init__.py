"""Per-step FLOPs from compiled XLA programs, timing, MFU and the energy/CO2 model."""
