"""Data parallelism over every visible device (and every host) with ``jax.sharding``.

One 1-D mesh with axis ``"data"``: the batch axis is split over it; parameters, optimizer and method state are
replicated (``params="replicate"``) or split along each array's largest divisible axis (``params="fsdp"``, ZeRO-3
style; XLA inserts the all-gathers). Because the step is one jit over globally sharded arrays, batch statistics
(SimCLR negatives, DINO centre) are computed over the global batch. Multi-host: call ``initialize_distributed``
first (a no-op unless configured), then every host feeds its own slice via ``put_batch``.

Example::

    mesh = make_mesh()
    state = shard_state(state, state_shardings(state, mesh))
    batch = put_batch(numpy_batch, mesh)           # numpy_batch: this host's share of the global batch
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import equinox as eqx
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = [
    "DATA_AXIS",
    "PARAM_MODES",
    "batch_sharding",
    "check_batch_size",
    "initialize_distributed",
    "is_array_like",
    "make_mesh",
    "put_batch",
    "replicated",
    "shard_state",
    "state_shardings",
    "sync_processes",
]

DATA_AXIS = "data"
PARAM_MODES = ("replicate", "fsdp")


def is_array_like(x: Any) -> bool:
    """Arrays and ``jax.ShapeDtypeStruct`` (the leaves of an abstract state): what a checkpoint or a sharding
    plan covers."""
    return eqx.is_array(x) or isinstance(x, jax.ShapeDtypeStruct)


def initialize_distributed(
    coordinator_address: str | None = None, num_processes: int | None = None, process_id: int | None = None
) -> bool:
    """Calls ``jax.distributed.initialize`` when multi-host is configured, by arguments or by the environment
    (``FLOPWISE_COORDINATOR``, ``FLOPWISE_NUM_PROCESSES``, ``FLOPWISE_PROCESS_ID``; or JAX's own
    ``JAX_COORDINATOR_ADDRESS``, or a cluster JAX detects itself when ``FLOPWISE_DISTRIBUTED=1``).
    Returns True when it initialised. Must run before any other JAX call."""
    coordinator_address = coordinator_address or os.environ.get("FLOPWISE_COORDINATOR")
    if num_processes is None and "FLOPWISE_NUM_PROCESSES" in os.environ:
        num_processes = int(os.environ["FLOPWISE_NUM_PROCESSES"])
    if process_id is None and "FLOPWISE_PROCESS_ID" in os.environ:
        process_id = int(os.environ["FLOPWISE_PROCESS_ID"])
    auto = os.environ.get("FLOPWISE_DISTRIBUTED") == "1" or "JAX_COORDINATOR_ADDRESS" in os.environ
    if coordinator_address is None and not auto:
        return False
    jax.distributed.initialize(
        coordinator_address=coordinator_address, num_processes=num_processes, process_id=process_id
    )
    return True


def sync_processes(name: str) -> None:
    """Returns when every process of a multi-host run has called ``sync_processes(name)`` (at once with one)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def make_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D ``("data",)`` mesh over ``devices`` (default: all devices of all processes)."""
    devices = list(jax.devices() if devices is None else devices)
    if not devices:
        raise ValueError("devices=[]; expected at least one device")
    return Mesh(np.asarray(devices), (DATA_AXIS,))


def check_batch_size(batch_size: int, mesh: Mesh) -> None:
    """Raises ValueError unless the global ``batch_size`` splits evenly over the mesh's devices."""
    n = mesh.devices.size
    if batch_size % n:
        lower, upper = (batch_size // n) * n, (batch_size // n + 1) * n
        raise ValueError(
            f"batch_size={batch_size} is not divisible by the {n} devices of the mesh; use a multiple of {n} "
            f"(e.g. {lower or n} or {upper}) or fewer devices"
        )


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis split over ``"data"``, other axes whole."""
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    """Every axis whole on every device."""
    return NamedSharding(mesh, PartitionSpec())


def _fsdp_spec(shape: tuple[int, ...], n: int) -> PartitionSpec:
    # Split the largest axis that divides evenly; small or indivisible arrays (biases, norms) stay replicated.
    order = sorted(range(len(shape)), key=lambda i: -shape[i])
    for axis in order:
        if shape[axis] % n == 0 and shape[axis] >= n:
            spec: list[str | None] = [None] * len(shape)
            spec[axis] = DATA_AXIS
            return PartitionSpec(*spec)
    return PartitionSpec()


def state_shardings(state: Any, mesh: Mesh, params: str = "replicate") -> Any:
    """Shardings for every array of ``state`` (concrete or abstract), as a pytree matching
    ``eqx.filter(state, is_array_like)``."""
    if params not in PARAM_MODES:
        raise ValueError(f"params={params!r}; expected one of {PARAM_MODES}")
    n = mesh.devices.size

    def sharding(x: Any) -> NamedSharding:
        if params == "fsdp" and len(x.shape) > 0:
            return NamedSharding(mesh, _fsdp_spec(tuple(x.shape), n))
        return replicated(mesh)

    return jax.tree.map(sharding, eqx.filter(state, is_array_like))


def shard_state(state: Any, shardings: Any) -> Any:
    """``state`` with its arrays placed by ``shardings`` (from ``state_shardings``); static parts untouched."""
    dynamic, static = eqx.partition(state, eqx.is_array)
    return eqx.combine(jax.device_put(dynamic, shardings), static)


def put_batch(batch: Mapping[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
    """This process's share of the global batch -> global arrays sharded along the batch axis.

    Each process passes ``global_batch / process_count`` examples; the global batch must divide by the device
    count (ValueError otherwise, naming the sizes).
    """
    sharding = batch_sharding(mesh)
    out: dict[str, jax.Array] = {}
    for name, local in batch.items():
        local = np.asarray(local)
        if local.dtype.kind in "USO":
            raise TypeError(f"batch[{name!r}] holds {local.dtype} values; only numeric arrays go to devices "
                            "(convert strings on the host first, e.g. in the task's prepare_batch)")
        if local.ndim == 0:
            raise ValueError(f"batch[{name!r}] is a scalar; expected a leading batch axis")
        check_batch_size(local.shape[0] * jax.process_count(), mesh)
        global_shape = (local.shape[0] * jax.process_count(), *local.shape[1:])
        out[name] = jax.make_array_from_process_local_data(sharding, local, global_shape)
    return out
