"""Optional: measure a local run's energy with codecarbon, to compare with the CO2 model (not required)."""

import contextlib
import dataclasses
from collections.abc import Iterator


@dataclasses.dataclass
class TrackedEnergy:
    """Filled in when the `track_energy` block exits: measured kWh and codecarbon's kgCO2e estimate."""

    kwh: float | None = None
    kg_co2e: float | None = None


@contextlib.contextmanager
def track_energy(project_name: str = "flopwise", **tracker_kwargs) -> Iterator[TrackedEnergy]:
    """Context manager around `codecarbon.OfflineEmissionsTracker` (extra kwargs go to it).

    Raises ImportError naming the package when codecarbon is not installed. Example:
        >>> with flopmeter.track_energy(country_iso_code="BEL") as measured:
        ...     run_training()
        >>> measured.kwh, measured.kg_co2e
    """
    try:
        import codecarbon
    except ImportError as error:
        raise ImportError(
            "track_energy needs the optional package codecarbon: pip install codecarbon"
        ) from error
    tracker_kwargs.setdefault("country_iso_code", "BEL")  # europe-west1 (Belgium), the study's default region
    tracker_kwargs.setdefault("save_to_file", False)
    tracker = codecarbon.OfflineEmissionsTracker(project_name=project_name, **tracker_kwargs)
    result = TrackedEnergy()
    tracker.start()
    try:
        yield result
    finally:
        emissions = tracker.stop()
        data = tracker.final_emissions_data
        result.kwh = float(data.energy_consumed) if data is not None else None
        result.kg_co2e = None if emissions is None else float(emissions)
