"""FLOPs of the GPU library calls XLA emits as custom calls: cuBLAS GEMMs, cuDNN convolutions, cuDNN attention.

XLA's cost analysis cannot see inside a custom call (JAX's clients use the generic `HloCostAnalysis`, which
prices each one at -1 FLOP), yet on a GPU these calls hold most of a training step's arithmetic. Their
operand shapes and `backend_config` say exactly what they compute, so they are counted here with XLA's
conventions (a multiply-add is 2 FLOPs, one FLOP per element for elementwise work, exponentials counted as
transcendentals):

- GEMM (`__cublas$gemm`, `__cublas$lt$matmul`, `__cublas$lt$matmul$f8`, ...): 2 * (output elements) * K, K the
  product of the lhs contracting dimensions (batch dimensions are in the output), plus one FLOP per output
  element for each elementwise op XLA folded into the call: alpha != 1, beta != 0 (the added C), and the
  epilogue (bias 1, ReLU 1, GELU 8 + 1 transcendental as in the tanh form, SiLU 1 + 1 transcendental).
- Convolution (`__cudnn$conv*`): 2 * (forward output elements) * (kernel elements / output features), the
  same for the forward, backward-input and backward-filter calls (their `dim_labels` are the forward's).
  Padding taps are included (XLA's own count of an unfused `convolution` skips them).
- Fused attention (`__cudnn$fmha*`), with B, N (query heads), T, S from the call's `intermediate_tensor_shape`,
  D the query/key head dimension and Dv the value's; `scores` = B * N * (query-key pairs computed): T * S,
  or only the pairs a causal or sliding-window mask keeps (the fused kernel skips masked blocks).
  Forward: Q K^T and P V, 2 * scores * (D + Dv) (= 4 * scores * D), plus the softmax counted in its unfused
  XLA form (scale, max, subtract, sum, divide: 5 per score, +1 with a bias) and one exp per score.
  Backward (flash attention keeps no P): it recomputes S = Q K^T (D), then dV = P^T dO (Dv), dP = dO V^T (Dv),
  dQ = dS K (D) and dK = dS^T Q (D): 2 * scores * (3 D + 2 Dv) = 10 * scores * D, i.e. 2.5x the forward's
  matmuls (an unfused backward that stores P does 2x); plus the recomputed softmax and dS = P (dP - rowsum(dO
  O)) (5 per score), rowsum(dO O) (2 * B * N * T * Dv), and one exp per score.
  Padding masks depend on run-time lengths: those calls are counted unpadded (an upper bound) and say so.
"""

import dataclasses
import math
import re
from collections.abc import Sequence

from flopmeter.hlo_text import Dims, backend_config

_CONV_TARGETS = {
    "__cudnn$convForward": "forward",
    "__cudnn$convBiasActivationForward": "forward",
    "__cudnn$convBackwardInput": "backward_input",
    "__cudnn$convBackwardFilter": "backward_filter",
}
# Elementwise FLOPs and transcendentals per output element of each cuBLASLt epilogue.
_EPILOGUE = {
    "DEFAULT": (0, 0),
    "BIAS": (1, 0),
    "RELU": (1, 0),
    "BIAS_RELU": (2, 0),
    "GELU": (8, 1),
    "GELU_AUX": (8, 1),
    "BIAS_GELU": (9, 1),
    "BIAS_GELU_AUX": (9, 1),
    "SILU": (1, 1),
    "BIAS_SILU": (2, 1),
}


@dataclasses.dataclass(frozen=True)
class CallCost:
    """What one library call computes: FLOPs, transcendentals, its kind and any caveat on the figure."""

    flops: float
    transcendentals: float
    kind: str
    caveat: str | None = None


def _dims_list(config: dict, key: str) -> tuple[int, ...]:
    return tuple(int(v) for v in config.get(key, ()))


def _gemm(operands: Sequence[Dims | None], results: Sequence[Dims | None], config: dict) -> CallCost | None:
    gemm = config.get("gemm_backend_config", config)  # older XLA wrote the gemm config unwrapped
    numbers = gemm.get("dot_dimension_numbers")
    lhs = operands[0] if operands else None
    out = results[0] if results else None
    if numbers is None or lhs is None or out is None:
        return None
    contracting = _dims_list(numbers, "lhs_contracting_dimensions")
    if any(d >= len(lhs) for d in contracting):
        return None
    outputs = math.prod(out)
    flops = 2.0 * outputs * math.prod(lhs[d] for d in contracting)
    alpha = (float(gemm.get("alpha_real", 1.0)), float(gemm.get("alpha_imag", 0.0)))
    beta = float(gemm.get("beta", 0.0))
    epilogue = str(gemm.get("epilogue", "DEFAULT"))
    if epilogue not in _EPILOGUE:
        return None
    per_output, transcendental = _EPILOGUE[epilogue]
    per_output += (alpha != (1.0, 0.0)) + (beta != 0.0) + (beta not in (0.0, 1.0))
    return CallCost(flops + per_output * outputs, float(transcendental * outputs), "gemm")


def _convolution(
    kind: str, operands: Sequence[Dims | None], results: Sequence[Dims | None], attributes: str
) -> CallCost | None:
    labels = re.search(r"dim_labels=(\w+)_(\w+)->(\w+)", attributes)
    if labels is None or len(operands) < 2 or not results:
        return None
    kernel, output = {
        "forward": (operands[1], results[0]),
        "backward_input": (operands[1], operands[0]),
        "backward_filter": (results[0], operands[1]),
    }[kind]
    kernel_labels = labels.group(2)
    if kernel is None or output is None or len(kernel) != len(kernel_labels) or "o" not in kernel_labels:
        return None
    per_output = math.prod(kernel) // kernel[kernel_labels.index("o")]
    return CallCost(2.0 * math.prod(output) * per_output, 0.0, f"convolution {kind}")


def _attended_pairs(queries: int, keys: int, causal: bool, window: int) -> int:
    """Query-key pairs a (top-left aligned) causal and/or sliding-window mask keeps."""
    if not causal and window <= 0:
        return queries * keys
    total = 0
    for i in range(queries):
        high = min(i + 1, keys) if causal else keys
        low = max(0, i + 1 - window) if window > 0 else 0
        total += max(high - low, 0)
    return total


def _head_dim(shape: Dims, numbers: dict | None, side: str, role: str) -> int:
    """Size of `shape`'s head dimension as located by a matmul's dot dimension numbers.

    `role="contracting"`: the matmul contracts the head dimension; `role="free"`: the head dimension is the one
    dimension neither batch nor contracting. Without usable numbers, the last dimension (JAX's BTNH and BNTH
    layouts both put the head dimension last).
    """
    if numbers is not None:
        contracting = _dims_list(numbers, f"{side}_contracting_dimensions")
        batch = _dims_list(numbers, f"{side}_batch_dimensions")
        if role == "contracting":
            candidates = contracting
        else:
            candidates = tuple(d for d in range(len(shape)) if d not in contracting and d not in batch)
        if len(candidates) == 1 and candidates[0] < len(shape):
            return shape[candidates[0]]
    return shape[-1]


def _attention(target: str, operands: Sequence[Dims | None], config: dict) -> CallCost | None:
    fmha = config.get("cudnn_fmha_backend_config")
    if fmha is None or len(operands) < 3 or any(o is None for o in operands[:3]):
        return None
    intermediate = fmha.get("intermediate_tensor_shape", {}).get("dimensions", [])
    if len(intermediate) != 4:
        return None
    batch, heads, queries, keys = (int(v) for v in intermediate)
    query, value = operands[0], operands[2]
    backward = "Backward" in target
    if backward:  # dK = dS^T Q keeps Q's head dimension; dP = dO V^T contracts V's
        head = _head_dim(query, fmha.get("bmm1_grad_gemm1_dot_dimension_numbers"), "rhs", "free")
        value_head = _head_dim(value, fmha.get("bmm2_grad_gemm2_dot_dimension_numbers"), "rhs", "contracting")
    else:  # S = Q K^T contracts Q's head dimension; O = P V keeps V's
        head = _head_dim(query, fmha.get("bmm1_dot_dimension_numbers"), "lhs", "contracting")
        value_head = _head_dim(value, fmha.get("bmm2_dot_dimension_numbers"), "rhs", "free")
    mask = str(fmha.get("mask_type", "NO_MASK"))
    causal = "CAUSAL" in mask or bool(fmha.get("is_causal_mask", False))
    window = int(fmha.get("sliding_window_length", 0) or 0)
    scores = batch * heads * _attended_pairs(queries, keys, causal, window)
    per_score = 5 + ("Bias" in target)
    if backward:
        rowsum = 2.0 * batch * heads * queries * value_head  # rowsum(dO * O), one per query row
        flops = 2.0 * scores * (3 * head + 2 * value_head) + per_score * scores + rowsum
    else:
        flops = 2.0 * scores * (head + value_head) + per_score * scores
    caveat = None
    if "PADDING" in mask:
        caveat = f"padding mask ({mask}): counted as if no position were padded, an upper bound"
    kind = "attention backward" if backward else "attention forward"
    return CallCost(flops, float(scores), kind, caveat)


def library_call_cost(
    target: str, operands: Sequence[Dims | None], results: Sequence[Dims | None], attributes: str
) -> CallCost | None:
    """Cost of one custom call from its target, operand/result dims and attribute text; None if unknown."""
    config = backend_config(attributes) or {}
    if target == "__cublas$gemm" or target.startswith("__cublas$lt$matmul"):
        return _gemm(operands, results, config)
    if target in _CONV_TARGETS:
        return _convolution(_CONV_TARGETS[target], operands, results, attributes)
    if target.startswith("__cudnn$fmha"):
        return _attention(target, operands, config)
    return None
