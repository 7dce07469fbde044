"""Parse HLO module text into computations and instructions: optimised (what `compiled.as_text()` prints) or
lowered (`lowered.as_text(dialect="hlo")`, whose computation headers carry no signature).

Only what FLOP counting needs is kept: each instruction's name, opcode, result dimensions (for a tuple-shaped
result, the dimensions of each top-level element), operand names and the attribute text after the operand list.
`backend_config(instruction)` decodes the JSON backend config that GPU library calls carry.
"""

import dataclasses
import json
import re

_COMP_HEADER = re.compile(r"^(ENTRY\s+)?%?([\w.\-]+)\s*(?:\(.*\)\s*->\s*.*)?\{\s*$")
_INSTR_START = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*(.*)$")
_ARRAY_SHAPE = re.compile(r"^([a-z]+[0-9a-z]*)\[([0-9,<=\s]*)\]")

Dims = tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Instruction:
    """One HLO instruction. `dims` is None for a tuple-shaped result; `result_dims` always lists the array
    results (one entry for an array, one per top-level tuple element, None for a nested tuple or token)."""

    name: str
    opcode: str
    dims: Dims | None
    operands: tuple[str, ...]
    attributes: str
    result_dims: tuple[Dims | None, ...] = ()


def matching_paren(text: str, start: int) -> int:
    """Index of the bracket closing the one at `start` (any of `([{`), or the last index if unbalanced."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] in "([{":
            depth += 1
        elif text[i] in ")]}":
            depth -= 1
            if depth == 0:
                return i
    return len(text) - 1


def _split_top_level(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _array_dims(type_str: str) -> Dims | None:
    shape = _ARRAY_SHAPE.match(type_str.strip())
    if shape is None:
        return None
    return tuple(int(d.replace("<=", "")) for d in shape.group(2).split(",") if d.strip())


def _operand_names(operand_text: str) -> tuple[str, ...]:
    # Compiled modules print `%name` (older printers `f32[2,3]{1,0} %name`); hand-written HLO (XLA's tests)
    # often drops the `%`, so fall back to the last word of each top-level operand.
    names = re.findall(r"%([\w.\-]+)", operand_text)
    if names:
        return tuple(names)
    return tuple(part.split()[-1] for part in _split_top_level(operand_text))


def parse_instruction(line: str) -> Instruction | None:
    """Parse one instruction line; None for anything that is not an instruction."""
    match = _INSTR_START.match(line)
    if match is None:
        return None
    name, rest = match.group(1), match.group(2)
    if rest.startswith("("):  # tuple-shaped result: keep each element's dims, skip the balanced type
        end = matching_paren(rest, 0)
        result_dims = tuple(_array_dims(part) for part in _split_top_level(rest[1:end]))
        dims, rest = None, rest[end + 1 :].lstrip()
    else:
        type_str, _, rest = rest.partition(" ")
        dims = _array_dims(type_str)
        result_dims = (dims,)
    op_match = re.match(r"([\w\-]+)\(", rest)
    if op_match is None:
        return None
    open_at = op_match.end() - 1
    close_at = matching_paren(rest, open_at)
    operands = _operand_names(rest[open_at + 1 : close_at])
    return Instruction(name, op_match.group(1), dims, operands, rest[close_at + 1 :], result_dims)


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
            instruction = parse_instruction(line)
            if instruction is not None:
                current.append(instruction)
    if not entry and computations:
        entry = list(computations)[-1]  # the printer writes the entry last
    return computations, entry


def _json_object_end(text: str, start: int) -> int:
    depth, in_string, escaped = 0, False, False
    for i in range(start, len(text)):
        char = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return i
    return -1


def backend_config(attributes: str) -> dict | None:
    """The instruction's `backend_config` as a dict, or None when absent or not JSON.

    Current printers write the JSON object inline (`backend_config={"gemm_backend_config":{...}}`); older ones
    wrote it as an escaped string (`backend_config="{\\"alpha_real\\":1,...}"`). Both are read.
    """
    at = attributes.find("backend_config=")
    if at < 0:
        return None
    start = at + len("backend_config=")
    try:
        if attributes.startswith("{", start):
            end = _json_object_end(attributes, start)
            value = json.loads(attributes[start : end + 1]) if end > 0 else None
        elif attributes.startswith('"', start):
            quoted = re.match(r'"(?:[^"\\]|\\.)*"', attributes[start:])
            value = json.loads(json.loads(quoted.group(0))) if quoted else None
        else:
            value = None
    except (json.JSONDecodeError, TypeError):
        return None
    return value if isinstance(value, dict) else None
