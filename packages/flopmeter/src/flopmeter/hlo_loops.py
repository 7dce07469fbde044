"""Loop-aware FLOP counting on compiled HLO text.

XLA's `cost_analysis()` visits every computation once, so the body of a `while` loop (`lax.scan`, `fori_loop`,
`scan_layers=True`) is counted for one iteration only. This module parses the optimised HLO text, finds each
loop's `known_trip_count` (written by XLA's while-loop analysis into the instruction's backend_config), and
counts FLOPs per instruction with XLA's conventions (a multiply-add is 2 FLOPs, one FLOP per element for
elementwise arithmetic, transcendental functions counted separately) twice: once with loops counted once (what
XLA reports) and once with loop bodies scaled by their trip counts, recursively for nested loops. The
difference is the correction that `measure` adds to XLA's own figure, so any small disagreement between this
counter and XLA only touches the loop bodies' share. Custom calls to cuBLAS and cuDNN, which XLA cannot cost,
are counted from their shapes (`flopmeter.library_calls`), inside loops too.
"""

import dataclasses
import math
import re

from flopmeter.hlo_text import Instruction, parse_hlo
from flopmeter.library_calls import library_call_cost

_Figures = tuple[float, float, float]  # flops, transcendentals, library-call flops
_ZERO: _Figures = (0.0, 0.0, 0.0)


def _add(a: _Figures, b: _Figures) -> _Figures:
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2])


_TRANSCENDENTAL = frozenset(
    {
        "exponential",
        "exponential-minus-one",
        "log",
        "log-plus-one",
        "tanh",
        "logistic",
        "sqrt",
        "rsqrt",
        "cbrt",
        "power",
        "sine",
        "cosine",
        "tan",
        "atan2",
        "erf",
    }
)
_ELEMENTWISE = frozenset(
    {
        "add",
        "subtract",
        "multiply",
        "divide",
        "maximum",
        "minimum",
        "compare",
        "select",
        "clamp",
        "negate",
        "abs",
        "sign",
        "floor",
        "ceil",
        "round-nearest-afz",
        "round-nearest-even",
        "remainder",
        "and",
        "or",
        "xor",
        "not",
        "convert",
        "is-finite",
        "shift-left",
        "shift-right-logical",
        "shift-right-arithmetic",
        "real",
        "imag",
    }
)

_TRIP_COUNT = re.compile(r'"known_trip_count"\s*:\s*\{\s*"n"\s*:\s*"(\d+)"')
_CALLED = re.compile(r"\b(calls|to_apply|body|condition)=%?([\w.\-]+)")
_BRANCHES = re.compile(r"branch_computations=\{([^}]*)\}")
_CUSTOM_TARGET = re.compile(r'custom_call_target="([^"]*)"')


@dataclasses.dataclass(frozen=True)
class WhileLoop:
    """One `while` instruction: its computation, body, and trip count (None when XLA could not prove one)."""

    name: str
    computation: str
    body: str
    trip_count: int | None


@dataclasses.dataclass(frozen=True)
class LibraryCall:
    """A custom call counted from its shapes (cuBLAS/cuDNN): FLOPs per execution, before loop scaling."""

    name: str
    target: str
    kind: str
    flops: float
    caveat: str | None = None


@dataclasses.dataclass(frozen=True)
class LoopCounts:
    """FLOPs/transcendentals counted on HLO text, with loop bodies once (`*_once`) and scaled (`*_scaled`).

    `library_flops_*` is the part of `flops_*` that library calls (`library_calls`) account for;
    `custom_calls` names the custom calls that could not be costed (counted as 0).
    """

    flops_once: float
    flops_scaled: float
    transcendentals_once: float
    transcendentals_scaled: float
    loops: tuple[WhileLoop, ...]
    custom_calls: tuple[str, ...]
    library_flops_once: float = 0.0
    library_flops_scaled: float = 0.0
    library_calls: tuple[LibraryCall, ...] = ()


def _elements(dims: tuple[int, ...] | None) -> int:
    return math.prod(dims) if dims is not None else 0


def _int_list(attributes: str, key: str) -> tuple[int, ...]:
    match = re.search(key + r"=\{([0-9,\s]*)\}", attributes)
    if match is None:
        return ()
    return tuple(int(v) for v in match.group(1).split(",") if v.strip())


class _Counter:
    """Sums (flops, transcendentals, library flops) over computations, memoised per (computation, scaled)."""

    def __init__(self, computations: dict[str, list[Instruction]]):
        self.computations = computations
        self.shapes = {c: {i.name: i.dims for i in instrs} for c, instrs in computations.items()}
        self.memo: dict[tuple[str, bool], _Figures] = {}
        self.loops: dict[str, WhileLoop] = {}
        self.custom_calls: set[str] = set()
        self.library_calls: dict[str, LibraryCall] = {}

    def computation(self, name: str, scaled: bool) -> _Figures:
        key = (name, scaled)
        if key not in self.memo:
            self.memo[key] = _ZERO  # guards against malformed recursive text
            total = _ZERO
            for instruction in self.computations.get(name, []):
                total = _add(total, self.instruction(name, instruction, scaled))
            self.memo[key] = total
        return self.memo[key]

    def _operand_dims(self, comp: str, instruction: Instruction, index: int) -> tuple[int, ...] | None:
        if index >= len(instruction.operands):
            return None
        return self.shapes[comp].get(instruction.operands[index])

    def _find(self, comp: str, name: str) -> Instruction | None:
        return next((i for i in self.computations.get(comp, []) if i.name == name), None)

    def _constant(self, comp: str, name: str) -> int | None:
        ins = self._find(comp, name)
        if ins is None or ins.opcode != "constant" or not ins.operands:
            return None
        value = re.match(r"\s*(-?\d+)\s*$", ins.operands[0])
        return int(value.group(1)) if value else None

    def _counted_loop(self, comp: str, ins: Instruction, called: dict[str, str]) -> int | None:
        """Trip count of a loop as JAX lowers ``scan``/``fori_loop`` before XLA's loop analysis runs (lowered
        HLO has no ``known_trip_count``): the condition is ``counter < N`` on a tuple element the body
        increments by 1 and the loop starts from a constant. None for any other loop."""
        cond = self.computations.get(called.get("condition", ""), [])
        root = cond[-1] if cond else None
        if root is None or root.opcode != "compare" or "direction=LT" not in root.attributes or len(root.operands) != 2:
            return None
        counter, limit = self._find(called["condition"], root.operands[0]), self._constant(called["condition"],
                                                                                             root.operands[1])
        index = re.search(r"index=(\d+)", counter.attributes) if counter and counter.opcode == "get-tuple-element" \
            else None
        init = self._find(comp, ins.operands[0]) if ins.operands else None
        body = self.computations.get(called.get("body", ""), [])
        if index is None or limit is None or init is None or init.opcode != "tuple" or not body:
            return None
        k = int(index.group(1))
        start = self._constant(comp, init.operands[k]) if k < len(init.operands) else None
        step = self._find(called["body"], body[-1].operands[k]) if body[-1].opcode == "tuple" else None
        if start is None or step is None or step.opcode != "add" or len(step.operands) != 2:
            return None
        read = self._find(called["body"], step.operands[0])
        if read is None or read.opcode != "get-tuple-element" or not re.search(rf"index={k}\b", read.attributes) \
                or self._constant(called["body"], step.operands[1]) != 1:
            return None
        return max(limit - start, 0)

    def _custom_call(self, comp: str, ins: Instruction) -> _Figures:
        target_match = _CUSTOM_TARGET.search(ins.attributes)
        target = target_match.group(1) if target_match else "unknown target"
        operands = [self._operand_dims(comp, ins, i) for i in range(len(ins.operands))]
        cost = library_call_cost(target, operands, ins.result_dims, ins.attributes)
        if cost is None:
            self.custom_calls.add(f"{ins.name} ({target})")
            return _ZERO
        self.library_calls[ins.name] = LibraryCall(ins.name, target, cost.kind, cost.flops, cost.caveat)
        return (cost.flops, cost.transcendentals, cost.flops)

    def instruction(self, comp: str, ins: Instruction, scaled: bool) -> _Figures:
        op, out = ins.opcode, _elements(ins.dims)
        called = dict((k, v) for k, v in _CALLED.findall(ins.attributes))
        if op == "while":
            trip = _TRIP_COUNT.search(ins.attributes)
            count = int(trip.group(1)) if trip else self._counted_loop(comp, ins, called)
            loop = WhileLoop(ins.name, comp, called.get("body", ""), count)
            self.loops[ins.name] = loop
            n = loop.trip_count if (scaled and loop.trip_count is not None) else 1
            body = self.computation(loop.body, scaled)
            condition = self.computation(called.get("condition", ""), scaled)
            return tuple(n * (b + c) for b, c in zip(body, condition, strict=True))
        if op == "conditional":
            branches = _BRANCHES.search(ins.attributes)
            names = re.findall(r"%?([\w.\-]+)", branches.group(1)) if branches else []
            costs = [self.computation(b, scaled) for b in names] or [_ZERO]
            return tuple(max(c[i] for c in costs) for i in range(3))  # XLA: each figure's largest branch
        if op in ("fusion", "call", "async-start", "custom-call") and "calls" in called:
            return self.computation(called["calls"], scaled)
        if op == "call" and "to_apply" in called:  # the text form of kCall names its callee `to_apply`
            return self.computation(called["to_apply"], scaled)
        if op == "custom-call":
            return self._custom_call(comp, ins)
        if op == "dot":
            lhs = self._operand_dims(comp, ins, 0)
            contracting = _int_list(ins.attributes, "lhs_contracting_dims")
            k = math.prod(lhs[d] for d in contracting) if lhs is not None else 1
            return (2.0 * out * k, 0.0, 0.0)
        if op == "convolution":
            rhs = self._operand_dims(comp, ins, 1)
            labels = re.search(r"dim_labels=\w+_(\w+)->", ins.attributes)
            if rhs is None or labels is None or "o" not in labels.group(1):
                return _ZERO
            per_output = math.prod(rhs) // rhs[labels.group(1).index("o")]
            return (2.0 * out * per_output, 0.0, 0.0)
        if op in ("reduce", "reduce-window", "all-reduce", "reduce-scatter"):
            reducer_f = max(self.computation(called.get("to_apply", ""), scaled)[0], 1.0)
            if op == "reduce-window":
                window = re.search(r"size=([0-9x]+)", ins.attributes)
                size = math.prod(int(v) for v in window.group(1).split("x")) if window else 1
                return (float(out * size) * reducer_f, 0.0, 0.0)
            if op == "reduce":
                inputs = sum(
                    _elements(self._operand_dims(comp, ins, i)) for i in range(len(ins.operands) // 2)
                )
                return (float(max(inputs - out, 0)) * reducer_f, 0.0, 0.0)
            return _ZERO  # collectives: communication, not arithmetic (XLA counts none either)
        if op in _TRANSCENDENTAL:
            return (0.0, float(out), 0.0)
        if op in _ELEMENTWISE:
            return (float(out), 0.0, 0.0)
        return _ZERO


def count_hlo(text: str) -> LoopCounts:
    """Count FLOPs and transcendentals in optimised HLO text, with loop bodies once and trip-count scaled.

    Custom calls to cuBLAS/cuDNN are counted from their shapes (`flopmeter.library_calls`) and scaled with the
    loops that contain them; other custom calls count 0 and are named in `custom_calls`.
    """
    computations, entry = parse_hlo(text)
    counter = _Counter(computations)
    once = counter.computation(entry, scaled=False)
    scaled = counter.computation(entry, scaled=True)
    return LoopCounts(
        flops_once=once[0],
        flops_scaled=scaled[0],
        transcendentals_once=once[1],
        transcendentals_scaled=scaled[1],
        loops=tuple(counter.loops.values()),
        custom_calls=tuple(sorted(counter.custom_calls)),
        library_flops_once=once[2],
        library_flops_scaled=scaled[2],
        library_calls=tuple(counter.library_calls[name] for name in sorted(counter.library_calls)),
    )
