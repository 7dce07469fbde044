"""GPU programs: cuBLAS / cuDNN custom calls counted from the compiled HLO text (issue 11, "FLOPs on GPU").

`fixtures/*.gpu.hlo*` were compiled on an H200 by `benchmarks/gpu_flops_check.py` (commands and the XLA:CPU
counts of the very same programs in `fixtures/gpu_fixtures.json`). The synthetic modules below reuse the
captured instruction text and change shapes, targets and configs to cover what the captures do not.
"""

import gzip
import json
import pathlib

import flopmeter
import jax
import jax.numpy as jnp
import pytest

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
RECORDED = json.loads((FIXTURES / "gpu_fixtures.json").read_text())["programs"]


def _fixture(name: str) -> str:
    path = FIXTURES / name
    return gzip.decompress(path.read_bytes()).decode() if name.endswith(".gz") else path.read_text()


def _module(*lines: str, params: str = "p: f32[]") -> str:
    body = "\n".join(f"  {line}" for line in lines)
    return f"HloModule jit_step, is_scheduled=true\n\nENTRY %main.1 ({params}) -> f32[] {{\n{body}\n}}\n"


# --- the captured ViT training step -------------------------------------------------------------------------


def test_captured_vit_step_agrees_with_the_same_step_on_cpu():
    for name in ("vit_step_unrolled.gpu.hlo.gz", "vit_step_scan.gpu.hlo.gz"):
        counts = flopmeter.count_hlo(_fixture(name))
        assert counts.custom_calls == ()  # every custom call was costed
        assert {call.target for call in counts.library_calls} == {"__cublas$lt$matmul"}
        assert counts.flops_scaled == pytest.approx(RECORDED[name]["xla_cpu_flops"], rel=0.02)


def test_captured_gemms_equal_the_closed_form_and_are_scaled_inside_loops():
    unrolled = flopmeter.count_hlo(_fixture("vit_step_unrolled.gpu.hlo.gz"))
    scanned = flopmeter.count_hlo(_fixture("vit_step_scan.gpu.hlo.gz"))
    # Forward + backward matmuls of a vit-s16 (depth 2, 64 px, 1000 classes) at batch 8, 2 FLOPs per MAC.
    matmuls = 2 * 8 * flopmeter.vit_train_macs(image_size=64, patch_size=16, width=384, depth=2, num_classes=1000)
    # The rest is the elementwise work XLA folded into the calls (bias epilogues, beta = 1 accumulation).
    assert unrolled.library_flops_scaled == pytest.approx(matmuls, rel=0.01)
    assert unrolled.library_flops_scaled >= matmuls
    # The same GEMMs, once per block unrolled or inside a 2-trip while loop in the scanned program.
    assert scanned.library_flops_scaled == unrolled.library_flops_scaled
    assert [loop.trip_count for loop in scanned.loops] == [2, 2]
    assert scanned.library_flops_once < 0.8 * scanned.library_flops_scaled


def test_triton_gemm_fusions_are_counted_as_xla_counts_them():
    # With default flags the GEMMs are nested Triton fusions, not custom calls: XLA costs them itself, and
    # flopmeter's own counter (used whenever a program also has custom calls) must agree with it.
    name = "vit_step_triton.gpu.hlo.gz"
    counts = flopmeter.count_hlo(_fixture(name))
    assert counts.library_calls == () and counts.custom_calls == ()
    assert counts.flops_once == pytest.approx(RECORDED[name]["xla_gpu_flops"], rel=1e-5)
    assert counts.flops_once == pytest.approx(RECORDED[name]["xla_cpu_flops"], rel=0.02)


class _CompiledText:
    """What cost_from_compiled reads from a compiled GPU program, with XLA's generic cost analysis figure."""

    def __init__(self, text: str, xla_flops: float):
        self._text, self._xla = text, xla_flops
        self.input_shardings = ()

    def as_text(self):
        return self._text

    def cost_analysis(self):
        return {"flops": self._xla, "bytes accessed": 1000.0}

    def memory_analysis(self):
        return None


def test_xla_figure_and_library_count_are_never_added():
    text = _fixture("vit_step_unrolled.gpu.hlo.gz")
    counts = flopmeter.count_hlo(text)
    # On GPU, XLA's generic analysis counts everything but the custom calls, minus 1 per custom call (this is
    # what it reported for this program on the H200: 1.16593e8 = non-library FLOPs - 41).
    xla = counts.flops_scaled - counts.library_flops_scaled - len(counts.library_calls)
    assert xla == pytest.approx(1.16593e8, rel=1e-5)
    cost = flopmeter.cost_from_compiled(_CompiledText(text, xla), compile_seconds=0.0)
    assert cost.flops == counts.flops_scaled and cost.library_flops == counts.library_flops_scaled
    # XLA saw all but the custom calls: the library count fills exactly that gap (and undoes the -1s).
    assert cost.flops == xla + cost.library_flops + len(counts.library_calls)
    assert any(f"XLA reported {xla:.6g}" in note for note in cost.notes)
    assert any("41 library custom call(s) (gemm)" in note for note in cost.notes)


# --- the captured fused attention ---------------------------------------------------------------------------

B, T, N, D = 2, 128, 4, 64  # [B, T, N, H] bfloat16 q, k, v of the captured programs


def _attention_closed_form(pairs: int) -> tuple[float, float]:
    scores = B * N * pairs
    forward = 2 * scores * D + 2 * scores * D + 5 * scores  # Q K^T, P V, softmax (scale max sub sum div)
    # Backward: S = Q K^T again, dV = P^T dO, dP = dO V^T, dQ = dS K, dK = dS^T Q; softmax + dS; rowsum(dO O).
    backward = 5 * 2 * scores * D + 5 * scores + 2 * B * N * T * D
    return forward, backward


@pytest.mark.parametrize(("name", "pairs"), [("attention.gpu.hlo.txt", T * T),
                                             ("attention_causal.gpu.hlo.txt", T * (T + 1) // 2)])
def test_captured_fused_attention_forward_and_backward(name, pairs):
    counts = flopmeter.count_hlo(_fixture(name))
    calls = {call.kind: call for call in counts.library_calls}
    forward, backward = _attention_closed_form(pairs)
    assert calls["attention forward"].target == "__cudnn$fmhaSoftmax"
    assert calls["attention backward"].target == "__cudnn$fmhaSoftmaxBackward"
    assert calls["attention forward"].flops == forward and calls["attention backward"].flops == backward
    assert counts.transcendentals_scaled >= 2 * B * N * pairs  # one exp per score, forward and backward


def test_fused_attention_matches_the_xla_implementation_less_the_recomputed_scores():
    counts = flopmeter.count_hlo(_fixture("attention.gpu.hlo.txt"))
    # The XLA implementation keeps the probabilities for the backward; the fused one recomputes Q K^T.
    recompute = 2 * B * N * T * T * D
    reference = RECORDED["attention.gpu.hlo.txt"]["xla_cpu_flops_of_xla_implementation"]
    assert counts.flops_scaled - recompute == pytest.approx(reference, rel=0.02)


# --- synthetic variants of the captured instructions --------------------------------------------------------

_FWD = next(
    line.strip()
    for line in _fixture("attention.gpu.hlo.txt").splitlines()
    if 'custom_call_target="__cudnn$fmhaSoftmax"' in line
)


def _attention_module(q: str, kv: str, dims: str, *, target: str = "__cudnn$fmhaSoftmax", mask: str = "NO_MASK",
                      window: int = 0) -> str:
    line = (_FWD.replace('"dimensions":["2","4","128","128"]', f'"dimensions":[{dims}]')
            .replace('"__cudnn$fmhaSoftmax"', f'"{target}"')
            .replace('"mask_type":"NO_MASK"', f'"mask_type":"{mask}"')
            .replace('"sliding_window_length":0', f'"sliding_window_length":{window}'))
    return _module(
        f"%dynamic_leaves_0_.1 = bf16[{q}]{{3,2,1,0}} parameter(0)",
        f"%dynamic_leaves_1_.1 = bf16[{kv}]{{3,2,1,0}} parameter(1)",
        f"%dynamic_leaves_2_.1 = bf16[{kv}]{{3,2,1,0}} parameter(2)",
        line,
    )


def _single_call(text: str) -> flopmeter.LibraryCall:
    counts = flopmeter.count_hlo(text)
    assert counts.custom_calls == () and len(counts.library_calls) == 1
    return counts.library_calls[0]


def test_cross_grouped_and_windowed_attention():
    # Cross attention: 128 queries over 64 keys.
    call = _single_call(_attention_module("2,128,4,64", "2,64,4,64", '"2","4","128","64"'))
    assert call.flops == 4 * 2 * 4 * 128 * 64 * 64 + 5 * 2 * 4 * 128 * 64
    # Grouped-query attention: one key/value head serves four query heads; the query heads set the work.
    call = _single_call(_attention_module("2,128,4,64", "2,128,1,64", '"2","4","128","128"'))
    assert call.flops == 4 * 2 * 4 * 128 * 128 * 64 + 5 * 2 * 4 * 128 * 128
    # Causal with a 16-key sliding window: query i sees keys max(0, i - 15) .. i.
    pairs = sum(min(i + 1, 16) for i in range(128))
    call = _single_call(_attention_module("2,128,4,64", "2,128,4,64", '"2","4","128","128"', mask="CAUSAL",
                                          window=16))
    assert call.flops == 2 * 4 * pairs * (4 * 64 + 5)
    # A bias adds one FLOP per score; a padding mask depends on run-time lengths and says so.
    call = _single_call(_attention_module("2,128,4,64", "2,128,4,64", '"2","4","128","128"',
                                          target="__cudnn$fmhaScaleBiasSoftmax", mask="PADDING"))
    assert call.flops == 2 * 4 * 128 * 128 * (4 * 64 + 6) and "upper bound" in call.caveat


_GEMM = next(
    line.strip()
    for line in _fixture("vit_step_unrolled.gpu.hlo.gz").splitlines()
    if "%custom-call.51 = " in line
)  # bf16[48,24,24] = batched [48,24,64] x [48,64,24]: one head's attention scores


def test_batched_gemm_from_the_capture():
    text = _module("%get-tuple-element.168 = bf16[48,24,64]{2,1,0} parameter(0)",
                   "%get-tuple-element.171 = bf16[48,64,24]{2,1,0} parameter(1)", _GEMM)
    assert _single_call(text).flops == 2 * 48 * 24 * 24 * 64


def test_legacy_gemm_escaped_config_alpha_beta_and_epilogues():
    config = ('{\\"alpha_real\\":0.5,\\"alpha_imag\\":0,\\"beta\\":1,\\"dot_dimension_numbers\\":'
              '{\\"lhs_contracting_dimensions\\":[\\"1\\"],\\"rhs_contracting_dimensions\\":[\\"0\\"],'
              '\\"lhs_batch_dimensions\\":[],\\"rhs_batch_dimensions\\":[]},\\"epilogue\\":\\"DEFAULT\\"}')
    text = _module(
        "%x = f32[32,16]{1,0} parameter(0)", "%w = f32[16,8]{1,0} parameter(1)", "%c = f32[32,8]{1,0} parameter(2)",
        f'%gemm = f32[32,8]{{1,0}} custom-call(f32[32,16]{{1,0}} %x, f32[16,8]{{1,0}} %w, f32[32,8]{{1,0}} %c), '
        f'custom_call_target="__cublas$gemm", backend_config="{config}"',
    )
    # 2 M N K, plus the folded `* alpha` and `+ C` (one FLOP per output element each).
    assert _single_call(text).flops == 2 * 32 * 8 * 16 + 2 * 32 * 8
    gelu = _GEMM.replace('"epilogue":"DEFAULT"', '"epilogue":"BIAS_GELU"')
    text = _module("%get-tuple-element.168 = bf16[48,24,64]{2,1,0} parameter(0)",
                   "%get-tuple-element.171 = bf16[48,64,24]{2,1,0} parameter(1)", gelu)
    counts = flopmeter.count_hlo(text)
    outputs = 48 * 24 * 24
    assert counts.flops_once == 2 * outputs * 64 + 9 * outputs and counts.transcendentals_once == outputs


def test_fp8_gemm_uses_the_first_two_operands():
    line = _GEMM.replace('"__cublas$lt$matmul"', '"__cublas$lt$matmul$f8"').replace(
        "custom-call(%get-tuple-element.168, %get-tuple-element.171)", "custom-call(%a, %b, %sa, %sb, %sd)")
    text = _module("%a = f8e4m3fn[48,24,64]{2,1,0} parameter(0)", "%b = f8e4m3fn[48,64,24]{2,1,0} parameter(1)",
                   "%sa = f32[] parameter(2)", "%sb = f32[] parameter(3)", "%sd = f32[] parameter(4)", line)
    assert _single_call(text).flops == 2 * 48 * 24 * 24 * 64


@pytest.mark.parametrize(
    ("target", "operands", "result"),
    [
        ("__cudnn$convBiasActivationForward", ("bf16[4,32,32,64]", "bf16[32,3,3,64]", "bf16[32]"), "bf16[4,32,32,32]"),
        ("__cudnn$convBackwardInput", ("bf16[4,32,32,32]", "bf16[32,3,3,64]"), "bf16[4,32,32,64]"),
        ("__cudnn$convBackwardFilter", ("bf16[4,32,32,64]", "bf16[4,32,32,32]"), "bf16[32,3,3,64]"),
    ],
)
def test_cudnn_convolutions_cost_the_forward_multiply_adds(target, operands, result):
    params = [f"%p{i} = {shape}{{3,2,1,0}} parameter({i})".replace("{3,2,1,0}", "{0}" if shape.count(",") == 0
                                                                       else "{3,2,1,0}")
              for i, shape in enumerate(operands)]
    names = ", ".join(f"%p{i}" for i in range(len(operands)))
    text = _module(*params, f"%conv = ({result}{{3,2,1,0}}, u8[0]{{0}}) custom-call({names}), "
                            f"window={{size=3x3 pad=1_1x1_1}}, dim_labels=b01f_o01i->b01f, "
                            f'custom_call_target="{target}"')
    assert _single_call(text).flops == 2 * 4 * 32 * 32 * 32 * 3 * 3 * 64  # 2 B Ho Wo Co Kh Kw Ci


def test_unknown_custom_calls_are_named_and_count_zero():
    text = _module("%p = f32[4,4]{1,0} parameter(0)",
                   '%sort = (f32[4,4]{1,0}, u8[16]{0}) custom-call(%p), custom_call_target="__cub$DeviceRadixSort"',
                   '%gemm = f32[4,4]{1,0} custom-call(%p, %p), custom_call_target="__cublas$gemm"')  # no config
    counts = flopmeter.count_hlo(text)
    assert counts.flops_once == 0 and counts.library_calls == ()
    assert counts.custom_calls == ("gemm (__cublas$gemm)", "sort (__cub$DeviceRadixSort)")


def test_cpu_programs_keep_xla_figure():
    cost = flopmeter.measure(lambda a, b: jnp.tanh(a @ b), jax.ShapeDtypeStruct((8, 16), jnp.float32),
                             jax.ShapeDtypeStruct((16, 4), jnp.float32))
    assert cost.library_flops == 0 and cost.flops == 2 * 8 * 16 * 4 and cost.transcendentals == 32
    assert not any("custom call" in note for note in cost.notes)
