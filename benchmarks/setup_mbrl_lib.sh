#!/usr/bin/env bash
# Creates .mbrl_venv/: a separate virtualenv with mbrl-lib (PyPI `mbrl` 0.2.0) on a CPU-only torch,
# used by `python -m benchmarks.planner_throughput --compare-mbrl-lib` (which runs
# benchmarks/mbrl_lib_cem.py inside it). mbrl-lib is never a dependency of mbjax.
#
#   bash benchmarks/setup_mbrl_lib.sh            # creates .mbrl_venv/ in the repository root
#   MBRL_VENV=/path/to/venv TORCH_WHEEL=/path/to/torch-...+cpu-....whl bash benchmarks/setup_mbrl_lib.sh
#
# Why the steps below:
# - torch goes in FIRST, from a local CPU wheel (torch==2.13.0+cpu): `pip install torch` from PyPI
#   on Linux pulls the CUDA build (gigabytes of nvidia-* wheels), which we never want here.
# - mbrl 0.2.0 pins omegaconf<2.1 (whose metadata pip >= 24.1 rejects) and hydra-core==1.0.3
#   (which fails to import on Python 3.11), so mbrl is installed with --no-deps and its runtime
#   needs by hand: hydra-core 1.3 / omegaconf 2.3 (the benchmark passes `_recursive_=False` where
#   mbrl-lib instantiates nested configs), gymnasium 0.26.3 (mbrl's pin), numpy, termcolor, tqdm.
#   pip < 24.1 is kept in the venv anyway so that `pip check`-style resolution of the old pins
#   does not crash.
# - Afterwards the script checks that torch is still the CPU build.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MBRL_VENV:-$ROOT/.mbrl_venv}"
PYTHON="${PYTHON:-python3}"
TORCH_VERSION="2.13.0"

find_torch_wheel() {
  if [[ -n "${TORCH_WHEEL:-}" ]]; then
    echo "$TORCH_WHEEL"
    return
  fi
  local d
  for d in /opt/wheels "$ROOT/wheels"; do
    local w
    w="$(ls "$d"/torch-"$TORCH_VERSION"+cpu-*.whl 2>/dev/null | head -n 1 || true)"
    if [[ -n "$w" ]]; then
      echo "$w"
      return
    fi
  done
}

WHEEL="$(find_torch_wheel)"
if [[ -z "$WHEEL" || ! -f "$WHEEL" ]]; then
  echo "setup_mbrl_lib.sh: no CPU torch wheel torch-$TORCH_VERSION+cpu-*.whl found in /opt/wheels" \
    "or $ROOT/wheels; set TORCH_WHEEL=/path/to/the/wheel (a CPU build; a CUDA torch from PyPI is" \
    "refused on purpose)" >&2
  exit 1
fi

if [[ ! -x "$VENV/bin/python" ]]; then
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
"${PIP[@]}" install -q "pip<24.1"
"${PIP[@]}" install -q "$WHEEL"
"${PIP[@]}" install -q --no-deps "mbrl==0.2.0"
"${PIP[@]}" install -q "hydra-core>=1.3,<1.4" "omegaconf>=2.3,<2.4" "gymnasium==0.26.3" \
  "numpy<2.3" "termcolor>=1.1" "tqdm>=4.48" "packaging"

"$VENV/bin/python" - <<'EOF'
import sys
import torch
import mbrl.models
import mbrl.planning

if torch.version.cuda is not None or "+cpu" not in torch.__version__:
    sys.exit(f"torch {torch.__version__} (cuda {torch.version.cuda}) is not the CPU build")
print(f"mbrl-lib venv ready: torch {torch.__version__}, python {sys.version.split()[0]}")
EOF
