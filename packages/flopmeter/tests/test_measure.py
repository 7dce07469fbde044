"""measure(): exact counts, abstract pytrees with static leaves, never running, traps 1 and 4."""

import dataclasses
import json

import flopmeter
import jax
import jax.numpy as jnp
import numpy as np
import pytest

F32 = jnp.float32


def _matmul_spec(m, k, n):
    return jax.ShapeDtypeStruct((m, k), F32), jax.ShapeDtypeStruct((k, n), F32)


def test_matmul_flops_are_two_per_multiply_add():
    cost = flopmeter.measure(jnp.matmul, *_matmul_spec(64, 32, 16))
    assert cost.flops == 2 * 64 * 32 * 16
    assert cost.macs == 64 * 32 * 16
    assert cost.flops_per_device == cost.flops and cost.num_devices == 1
    assert cost.lowered_flops == pytest.approx(cost.flops, rel=0.01)
    assert cost.peak_memory_bytes >= 4 * (64 * 32 + 32 * 16 + 64 * 16)
    assert cost.backend == jax.default_backend() and cost.jax_version == jax.__version__
    assert cost.compile_seconds > 0 and cost.notes == ()


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class _Layer:
    """A pytree like an Equinox module: array leaves, static metadata and a non-array leaf (a function)."""

    weight: object
    activation: object
    scale: object
    name: str = dataclasses.field(metadata=dict(static=True), default="layer")


def test_pytree_with_static_leaves_and_kwargs():
    def apply(layer, x, *, repeats):
        for _ in range(repeats):
            x = layer.activation(x @ layer.weight) * layer.scale
        return x

    layer = _Layer(weight=jax.ShapeDtypeStruct((32, 32), F32), activation=jax.nn.relu, scale=2.0)
    cost = flopmeter.measure(apply, layer, jax.ShapeDtypeStruct((8, 32), F32), repeats=3)
    # 3 matmuls + relu (1 flop/element) + scale multiply (1 flop/element), 8 x 32 outputs each.
    assert cost.flops == pytest.approx(3 * (2 * 8 * 32 * 32 + 2 * 8 * 32), rel=0.02)


def test_concrete_arrays_are_compiled_but_never_run():
    calls = []

    def fn(x):
        jax.debug.callback(lambda v: calls.append(v), x.sum())
        return x * 2.0

    cost = flopmeter.measure(fn, jnp.ones((4, 4), F32))
    assert cost.flops >= 16 and calls == []


def test_cost_analysis_forms_list_dict_none():
    as_dict = {"flops": 10.0, "transcendentals": 2.0, "bytes accessed": 8.0, "utilization0{}": 1.0}
    figures, notes = flopmeter.normalise_cost_analysis(as_dict)
    assert figures == {"flops": 10.0, "transcendentals": 2.0, "bytes accessed": 8.0} and notes == []
    figures, notes = flopmeter.normalise_cost_analysis([as_dict, {"flops": 5.0}])  # JAX < 0.4.38
    assert figures["flops"] == 15.0 and figures["bytes accessed"] == 8.0
    figures, notes = flopmeter.normalise_cost_analysis(None)
    assert figures["flops"] == 0.0 and "None" in notes[0]
    with pytest.raises(TypeError, match="cost_analysis"):
        flopmeter.normalise_cost_analysis(3.0)


class _FakeCompiled:
    """A real compiled program whose cost_analysis() answers as an old JAX / a GPU backend would."""

    def __init__(self, compiled, raw):
        self._compiled, self._raw = compiled, raw

    def cost_analysis(self):
        return self._raw

    def __getattr__(self, name):
        return getattr(self._compiled, name)


def _compiled_matmul():
    return jax.jit(jnp.matmul).lower(*_matmul_spec(16, 8, 4)).compile()


@pytest.mark.parametrize(
    "raw",
    [
        [{"flops": 1024.0, "bytes accessed": 100.0}],
        {"flops": 1024.0, "bytes accessed": 100.0},
        None,
    ],
)
def test_cost_from_compiled_handles_every_cost_analysis_form(raw):
    cost = flopmeter.cost_from_compiled(_FakeCompiled(_compiled_matmul(), raw), compile_seconds=0.0)
    # With None, the figure comes from flopmeter's own count of the compiled HLO (and says so).
    assert cost.flops == 2 * 16 * 8 * 4
    assert (raw is None) == any("None" in n for n in cost.notes)


def test_negative_custom_call_counts_are_never_summed():
    raw = [{"flops": 1024.0, "bytes accessed": 64.0}, {"flops": -1.0, "bytes accessed": -1.0}]
    cost = flopmeter.cost_from_compiled(_FakeCompiled(_compiled_matmul(), raw), compile_seconds=0.0)
    assert cost.flops == 1024.0 and cost.bytes_accessed == 64.0
    assert any("-1" in n and "custom call" in n for n in cost.notes)
    # A lone -1 (the whole figure unknown) falls back to counting the HLO, never to -1.
    cost = flopmeter.cost_from_compiled(
        _FakeCompiled(_compiled_matmul(), {"flops": -1.0}), compile_seconds=0.0
    )
    assert cost.flops == 1024.0


def test_custom_call_instructions_are_named_in_notes():
    hlo = """HloModule m

ENTRY %main (p: f32[4,4]) -> f32[4,4] {
  %p = f32[4,4]{1,0} parameter(0)
  ROOT %cc = f32[4,4]{1,0} custom-call(%p), custom_call_target="__cublas$gemm"
}
"""
    counts = flopmeter.count_hlo(hlo)
    assert counts.flops_once == 0 and counts.custom_calls == ("cc (__cublas$gemm)",)


def test_cost_json_round_trip_and_table():
    cost = flopmeter.measure(jnp.matmul, *_matmul_spec(8, 8, 8))
    data = json.loads(cost.to_json())
    assert data["flops"] == 1024 and data["macs"] == 512 and isinstance(data["notes"], list)
    assert flopmeter.Cost.from_dict(data) == cost
    with pytest.raises(ValueError, match="unknown Cost fields"):
        flopmeter.Cost.from_dict({**data, "flop": 1})
    table = cost.table()
    assert "FLOPs (2 per multiply-add" in table and "MACs" in table and "1.024 kFLOP" in table


def test_rejects_non_callable():
    with pytest.raises(TypeError, match="fn"):
        flopmeter.measure(np.ones(3))
