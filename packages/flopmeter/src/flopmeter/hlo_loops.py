"""Loop-aware FLOP counting on compiled HLO text.

XLA's `cost_analysis()` visits every computation once, so the body of a `while` loop (`lax.scan`, `fori_loop`,
`scan_layers=True`) is counted for one iteration only. This module parses the optimised HLO text, finds each
loop's `known_trip_count` (written by XLA's while-loop analysis into the instruction's backend_config), and
counts FLOPs per instruction with XLA's conventions (a multiply-add is 2 FLOPs, one FLOP per element for
elementwise arithmetic, transcendental functions counted separately) twice: once with loops counted once (what
XLA reports) and once with loop bodies scaled by their trip counts, recursively for nested loops. The
difference is the correction that `measure` adds to XLA's own figure, so any small disagreement between this
counter and XLA only touches the loop bodies' share.
"""

import dataclasses
import math
import re

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

_COMP_HEADER = re.compile(r"^(ENTRY\s+)?%?([\w.\-]+)\s*\(.*\)\s*->\s*.*\{\s*$")
_INSTR_START = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*(.*)$")
_ARRAY_SHAPE = re.compile(r"^([a-z]+[0-9]*)\[([0-9,<=\s]*)\]")
_TRIP_COUNT = re.compile(r'"known_trip_count"\s*:\s*\{\s*"n"\s*:\s*"(\d+)"')
_CALLED = re.compile(r"\b(calls|to_apply|body|condition)=%?([\w.\-]+)")
_BRANCHES = re.compile(r"branch_computations=\{([^}]*)\}")
_CUSTOM_TARGET = re.compile(r'custom_call_target="([^"]*)"')


@dataclasses.dataclass(frozen=True)
class Instruction:
    name: str
    opcode: str
    dims: tuple[int, ...] | None  # None for tuple-shaped results
    operands: tuple[str, ...]
    attributes: str


@dataclasses.dataclass(frozen=True)
class WhileLoop:
    """One `while` instruction: its computation, body, and trip count (None when XLA could not prove one)."""

    name: str
    computation: str
    body: str
    trip_count: int | None


@dataclasses.dataclass(frozen=True)
class LoopCounts:
    """FLOPs/transcendentals counted on HLO text, with loop bodies once (`*_once`) and scaled (`*_scaled`)."""

    flops_once: float
    flops_scaled: float
    transcendentals_once: float
    transcendentals_scaled: float
    loops: tuple[WhileLoop, ...]
    custom_calls: tuple[str, ...]


def _matching_paren(text: str, start: int) -> int:
    depth = 0
    for i in range(start, len(text)):
        if text[i] in "({":
            depth += 1
        elif text[i] in ")}":
            depth -= 1
            if depth == 0:
                return i
    return len(text) - 1


def _parse_instruction(line: str) -> Instruction | None:
    match = _INSTR_START.match(line)
    if match is None:
        return None
    name, rest = match.group(1), match.group(2)
    if rest.startswith("("):  # tuple-shaped result: skip the balanced type
        end = _matching_paren(rest, 0)
        dims, rest = None, rest[end + 1 :].lstrip()
    else:
        type_str, _, rest = rest.partition(" ")
        shape = _ARRAY_SHAPE.match(type_str)
        if shape is None:
            dims = None
        else:
            dims = tuple(int(d.replace("<=", "")) for d in shape.group(2).split(",") if d.strip())
    op_match = re.match(r"([\w\-]+)\(", rest)
    if op_match is None:
        return None
    opcode = op_match.group(1)
    open_at = op_match.end() - 1
    close_at = _matching_paren(rest, open_at)
    operand_text = rest[open_at + 1 : close_at]
    # Operands are `%name` (newer printers) or `f32[2,3]{1,0} %name` (older ones): keep the names only.
    operands = tuple(re.findall(r"%([\w.\-]+)", operand_text))
    return Instruction(name, opcode, dims, operands, rest[close_at + 1 :])


def parse_hlo(text: str) -> tuple[dict[str, list[Instruction]], str]:
    """Split HLO module text into `{computation name: instructions}` and the entry computation's name."""
    computations: dict[str, list[Instruction]] = {}
    entry = ""
    current: list[Instruction] | None = None
    for line in text.splitlines():
        header = _COMP_HEADER.match(line)
        if header is not None and not line.lstrip().startswith("ROOT"):
            current = []
            computations[header.group(2)] = current
            if header.group(1):
                entry = header.group(2)
            continue
        if line.startswith("}"):
            current = None
            continue
        if current is not None:
            instruction = _parse_instruction(line)
            if instruction is not None:
                current.append(instruction)
    if not entry and computations:
        entry = list(computations)[-1]  # the printer writes the entry last
    return computations, entry


def _elements(dims: tuple[int, ...] | None) -> int:
    return math.prod(dims) if dims is not None else 0


def _int_list(attributes: str, key: str) -> tuple[int, ...]:
    match = re.search(key + r"=\{([0-9,\s]*)\}", attributes)
    if match is None:
        return ()
    return tuple(int(v) for v in match.group(1).split(",") if v.strip())


class _Counter:
    def __init__(self, computations: dict[str, list[Instruction]]):
        self.computations = computations
        self.shapes = {c: {i.name: i.dims for i in instrs} for c, instrs in computations.items()}
        self.memo: dict[tuple[str, bool], tuple[float, float]] = {}
        self.loops: dict[str, WhileLoop] = {}
        self.custom_calls: set[str] = set()

    def computation(self, name: str, scaled: bool) -> tuple[float, float]:
        key = (name, scaled)
        if key not in self.memo:
            self.memo[key] = (0.0, 0.0)  # guards against malformed recursive text
            flops = trans = 0.0
            for instruction in self.computations.get(name, []):
                f, t = self.instruction(name, instruction, scaled)
                flops, trans = flops + f, trans + t
            self.memo[key] = (flops, trans)
        return self.memo[key]

    def _operand_dims(self, comp: str, instruction: Instruction, index: int) -> tuple[int, ...] | None:
        if index >= len(instruction.operands):
            return None
        return self.shapes[comp].get(instruction.operands[index])

    def instruction(self, comp: str, ins: Instruction, scaled: bool) -> tuple[float, float]:
        op, out = ins.opcode, _elements(ins.dims)
        called = dict((k, v) for k, v in _CALLED.findall(ins.attributes))
        if op == "while":
            trip = _TRIP_COUNT.search(ins.attributes)
            loop = WhileLoop(ins.name, comp, called.get("body", ""), int(trip.group(1)) if trip else None)
            self.loops[ins.name] = loop
            n = loop.trip_count if (scaled and loop.trip_count is not None) else 1
            body_f, body_t = self.computation(loop.body, scaled)
            cond_f, cond_t = self.computation(called.get("condition", ""), scaled)
            return n * body_f + n * cond_f, n * body_t + n * cond_t
        if op == "conditional":
            branches = _BRANCHES.search(ins.attributes)
            names = re.findall(r"%?([\w.\-]+)", branches.group(1)) if branches else []
            costs = [self.computation(b, scaled) for b in names] or [(0.0, 0.0)]
            return max(c[0] for c in costs), max(c[1] for c in costs)
        if op in ("fusion", "call", "async-start", "custom-call") and "calls" in called:
            return self.computation(called["calls"], scaled)
        if op == "call" and "to_apply" in called:  # the text form of kCall names its callee `to_apply`
            return self.computation(called["to_apply"], scaled)
        if op == "custom-call":
            target = _CUSTOM_TARGET.search(ins.attributes)
            self.custom_calls.add(f"{ins.name} ({target.group(1) if target else 'unknown target'})")
            return 0.0, 0.0
        if op == "dot":
            lhs = self._operand_dims(comp, ins, 0)
            contracting = _int_list(ins.attributes, "lhs_contracting_dims")
            k = math.prod(lhs[d] for d in contracting) if lhs is not None else 1
            return 2.0 * out * k, 0.0
        if op == "convolution":
            rhs = self._operand_dims(comp, ins, 1)
            labels = re.search(r"dim_labels=\w+_(\w+)->", ins.attributes)
            if rhs is None or labels is None or "o" not in labels.group(1):
                return 0.0, 0.0
            per_output = math.prod(rhs) // rhs[labels.group(1).index("o")]
            return 2.0 * out * per_output, 0.0
        if op in ("reduce", "reduce-window", "all-reduce", "reduce-scatter"):
            reducer_f, _ = self.computation(called.get("to_apply", ""), scaled)
            reducer_f = max(reducer_f, 1.0)
            if op == "reduce-window":
                window = re.search(r"size=([0-9x]+)", ins.attributes)
                size = math.prod(int(v) for v in window.group(1).split("x")) if window else 1
                return float(out * size) * reducer_f, 0.0
            if op == "reduce":
                inputs = sum(
                    _elements(self._operand_dims(comp, ins, i)) for i in range(len(ins.operands) // 2)
                )
                return float(max(inputs - out, 0)) * reducer_f, 0.0
            return 0.0, 0.0  # collectives: communication, not arithmetic (XLA counts none either)
        if op in _TRANSCENDENTAL:
            return 0.0, float(out)
        if op in _ELEMENTWISE:
            return float(out), 0.0
        return 0.0, 0.0


def count_hlo(text: str) -> LoopCounts:
    """Count FLOPs and transcendentals in optimised HLO text, with loop bodies once and trip-count scaled."""
    computations, entry = parse_hlo(text)
    counter = _Counter(computations)
    flops_once, trans_once = counter.computation(entry, scaled=False)
    flops_scaled, trans_scaled = counter.computation(entry, scaled=True)
    return LoopCounts(
        flops_once=flops_once,
        flops_scaled=flops_scaled,
        transcendentals_once=trans_once,
        transcendentals_scaled=trans_scaled,
        loops=tuple(counter.loops.values()),
        custom_calls=tuple(sorted(counter.custom_calls)),
    )
