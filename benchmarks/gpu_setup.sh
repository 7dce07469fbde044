#!/usr/bin/env bash
# Installs flopwise, offline, into a GPU machine's Python that already has jax (CUDA), equinox, optax,
# orbax-checkpoint, einops, timm and PyTorch, without touching any of them (docs/benchmarks.md, "GPU suite").
#
#   bash benchmarks/gpu_setup.sh download    # here, online: fill wheels/ (ignored by git) for CPython 3.11 and 3.12
#   bash benchmarks/gpu_setup.sh install     # there, offline, from the repository root with wheels/ beside it
#
# install: every requirement of benchmarks/gpu_requirements.txt that is not installed yet is installed with
# --no-deps from wheels/ (one already installed, at any version, is left alone), then our eight packages with
# --no-deps (their jax bound, <0.11, is the tested range; the machine's jax stays whatever it is), built from
# this tree with the setuptools wheel in wheels/. Then every package is imported and the versions printed.
# PYTHON selects the interpreter (default python3). Bad input: one line "error: ..." and status 2.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
REQS=benchmarks/gpu_requirements.txt
PKGS=(flopcli flopdata vitcore flopmeter runloop sslmethods segtransfer flopstudy)
PYVERSIONS=(3.11 3.12)

die() { echo "error: $*" >&2; exit 2; }

requirements() { grep -v '^\s*#' "$REQS" | grep -v '^\s*$'; }

download() {
    mkdir -p wheels
    for v in "${PYVERSIONS[@]}"; do
        requirements | grep -v '^promise==' | "$PY" -m pip download -q --no-deps --only-binary=:all: \
            --implementation cp --python-version "$v" --platform manylinux2014_x86_64 \
            --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 -d wheels -r /dev/stdin
    done
    # promise is published as a source archive only: build its (pure Python) wheel here
    "$PY" -m pip wheel -q --no-deps -w wheels "$(requirements | grep '^promise==')"
    "$PY" -m pip download -q --no-deps --only-binary=:all: -d wheels "setuptools>=77"
    du -sh wheels
}

install() {
    [ -d wheels ] || die "wheels/ is missing: run 'bash benchmarks/gpu_setup.sh download' where there is internet"
    "$PY" - "$REQS" <<'EOF' || exit $?
import importlib.metadata as md, platform, sys
version = sys.version_info
print(f"python {platform.python_version()} ({sys.executable})")
for name in ("jax", "jaxlib", "equinox", "optax", "orbax-checkpoint", "einops", "timm", "torch"):
    try:
        print(f"  {name} {md.version(name)} (kept)")
    except md.PackageNotFoundError:
        print(f"  {name}: not installed")
if version < (3, 11):
    print(f"error: python {version[0]}.{version[1]}: flopwise needs Python 3.11 or newer", file=sys.stderr)
    sys.exit(2)
EOF
    # an image whose Python is the distribution's (PEP 668 "externally managed") still takes our wheels
    export PIP_BREAK_SYSTEM_PACKAGES=1
    local tag
    tag=$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
    ls wheels/array_record-*-"$tag"-*.whl >/dev/null 2>&1 \
        || die "wheels/ has no $tag wheels (it holds cp311 and cp312): add ${tag#cp} to PYVERSIONS and download"
    local missing=()
    while read -r req; do
        name=${req%%==*}
        if "$PY" -c "import importlib.metadata as m, sys; m.version(sys.argv[1])" "$name" 2>/dev/null; then
            echo "  $name $("$PY" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$name") (kept)"
        else
            missing+=("$req")
        fi
    done < <(requirements)
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing ${#missing[@]} missing requirement(s) from wheels/: ${missing[*]}"
        "$PY" -m pip install -q --no-index --find-links wheels --no-deps "${missing[@]}"
    fi
    echo "installing our packages (--no-deps): ${PKGS[*]}"
    "$PY" -m pip install -q --no-index --find-links wheels --no-deps "${PKGS[@]/#/packages/}"
    "$PY" - <<'EOF'
import importlib, importlib.metadata as md
for name in ("flopcli", "flopdata", "vitcore", "flopmeter", "runloop", "sslmethods", "segtransfer", "flopstudy",
             "grain", "array_record", "tensorflow_datasets", "ml_collections", "submitit", "pycocotools"):
    importlib.import_module(name)
import jax
print(f"flopwise installed; jax {jax.__version__} on {jax.devices()[0].platform} {jax.devices()[0].device_kind}")
EOF
}

case "${1:-}" in
    download) download ;;
    install) install ;;
    *) die "expected 'download' or 'install', got '${1:-}'" ;;
esac
