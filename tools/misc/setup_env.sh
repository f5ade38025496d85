#!/usr/bin/env bash
# Create (or update) the project environment in .venv/ and install the pinned
# OpenMMLab stack plus nucseg itself (editable).
#
# mmcv 2.1.0 is only published as an sdist; mmsegmentation 1.2.2 needs its
# compiled ops (`mmcv._ext`). The build takes 14-26 minutes on 2 cores, so the
# built wheel is cached in $NUCSEG_WHEEL_CACHE (default ~/.cache/nucseg/wheels)
# under a directory keyed by the torch version and Python ABI: a wheel built
# against one torch fails with undefined symbols under another, and pip's own
# wheel cache keys only on the sdist.
#
# Usage: tools/misc/setup_env.sh [--tests]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
VENV="${NUCSEG_VENV:-$ROOT/.venv}"
PY_BOOT="${PYTHON:-python3}"
WITH_TESTS=0
[[ "${1:-}" == "--tests" ]] && WITH_TESTS=1
MMCV_VERSION="$(sed -n 's/^mmcv==\([0-9.]*\).*/\1/p' requirements/mmcv.txt)"
CACHE="${NUCSEG_WHEEL_CACHE:-$HOME/.cache/nucseg/wheels}"

log() { printf '[setup_env %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating $VENV with $($PY_BOOT --version)"
  "$PY_BOOT" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check)

# A stamp of every requirements file lets a second `make` skip the installs.
STAMP="$VENV/.nucseg-stamp"
WANT="$(cat requirements/*.txt setup.cfg setup.py tools/misc/setup_env.sh | sha256sum | cut -c1-16)-tests$WITH_TESTS"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]] && "$PY" -c "import mmcv._ext, nucseg" 2>/dev/null; then
  log "environment up to date ($VENV)"
  exit 0
fi

log "build tools and torch"
"${PIP[@]}" install -q -r requirements/build.txt
"${PIP[@]}" install -q -r requirements/torch.txt

TORCH_VERSION="$("$PY" -c 'import torch; print(torch.__version__)')"
PY_TAG="$("$PY" -c 'import sys; print(f"cp{sys.version_info.major}{sys.version_info.minor}")')"
KEY_DIR="$CACHE/mmcv-$MMCV_VERSION/torch-${TORCH_VERSION//+/_}-$PY_TAG"

if "$PY" -c "import mmcv, mmcv._ext, sys; sys.exit(mmcv.__version__ != '$MMCV_VERSION')" 2>/dev/null; then
  log "mmcv $MMCV_VERSION with ops already installed"
else
  WHEEL="$(ls "$KEY_DIR"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n 1 || true)"
  if [[ -z "$WHEEL" ]]; then
    log "no cached mmcv wheel for torch $TORCH_VERSION: building from source (14-26 min on 2 cores)"
    WORK="$(mktemp -d)"
    trap 'rm -rf "$WORK"' EXIT
    "${PIP[@]}" download -q --no-deps --no-binary :all: --no-build-isolation \
      -d "$WORK" "mmcv==$MMCV_VERSION"
    tar -xzf "$WORK"/mmcv-"$MMCV_VERSION".tar.gz -C "$WORK"
    SRC="$WORK/mmcv-$MMCV_VERSION"
    # torch >= 2.14 headers need C++20; mmcv 2.1.0 hard-codes -std=c++17.
    TORCH_MAJOR_MINOR="$("$PY" -c 'import torch; print("%d%02d" % tuple(int(x) for x in torch.__version__.split(".")[:2]))')"
    if (( TORCH_MAJOR_MINOR >= 214 )); then
      grep -q -- '-std=c++17' "$SRC/setup.py" || { echo "mmcv setup.py has no -std=c++17 flag to raise" >&2; exit 1; }
      sed -i 's/-std=c++17/-std=c++20/g' "$SRC/setup.py"
    fi
    mkdir -p "$WORK/dist"
    (cd "$SRC" && MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS="${MAX_JOBS:-2}" \
      "${PIP[@]}" wheel --no-build-isolation --no-deps -w "$WORK/dist" . )
    mkdir -p "$KEY_DIR"
    BUILT="$(ls "$WORK"/dist/mmcv-*.whl)"
    # Copy then rename so a concurrent reader never sees half a wheel.
    cp "$BUILT" "$KEY_DIR/.partial.whl"
    mv "$KEY_DIR/.partial.whl" "$KEY_DIR/$(basename "$BUILT")"
    WHEEL="$KEY_DIR/$(basename "$BUILT")"
    log "cached $WHEEL"
  else
    log "using cached $WHEEL"
  fi
  "${PIP[@]}" install -q --no-deps --force-reinstall "$WHEEL"
fi

log "runtime requirements"
"${PIP[@]}" install -q -r requirements/runtime.txt -r requirements/mmcv.txt
# Packages whose declared dependencies nucseg does not use (see the file).
"${PIP[@]}" install -q --no-deps -r requirements/nodeps.txt
"$PY" -c "import mmcv._ext" || {
  echo "mmcv does not import its compiled ops; delete the cached wheel in $KEY_DIR and rerun" >&2
  exit 1
}
if (( WITH_TESTS )); then
  log "test requirements"
  "${PIP[@]}" install -q -r requirements/tests.txt
fi
log "nucseg (editable)"
"${PIP[@]}" install -q --no-deps --no-build-isolation -e .
"$PY" -c "from dynamic_network_architectures.architectures.unet import PlainConvUNet"
"$PY" -c "import mmcv._ext, mmseg, mmdet, segment_anything, nucseg; print('stack ok: torch', __import__('torch').__version__, 'mmcv', __import__('mmcv').__version__, 'mmseg', mmseg.__version__, 'mmdet', mmdet.__version__)"
echo "$WANT" > "$STAMP"
