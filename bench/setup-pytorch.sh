#!/usr/bin/env bash
# Sets up the PyTorch anchor for `batchrender bench --model` (bench/hunyuan_dit_reference.py) fairly:
#  - Debian's python3-torch (1.13, CPU) and numpy;
#  - libopenblas0-pthread: Debian's torch is linked against the generic libblas.so.3, which is the reference BLAS
#    (~3 GFLOP/s) until OpenBLAS is installed and selected as the libblas.so.3 alternative (~100 GFLOP/s on 2 cores);
#  - then it prints which BLAS torch loads, the int8 engines it has (no fbgemm in Debian's build: onednn, qnnpack),
#    and a measured sgemm rate at the thread count given (default 2), as JSON.
# Idempotent; needs root (or sudo) only when something is missing.
set -euo pipefail
threads="${1:-2}"
py=/usr/bin/python3   # Debian's interpreter: a pyenv/venv python on PATH would not see python3-torch

missing=()
dpkg -s python3-torch >/dev/null 2>&1 || missing+=(python3-torch)
dpkg -s python3-numpy >/dev/null 2>&1 || missing+=(python3-numpy)
dpkg -s libopenblas0-pthread >/dev/null 2>&1 || missing+=(libopenblas0-pthread)
if ((${#missing[@]})); then
  sudo_cmd=""
  [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  echo "setup-pytorch: installing ${missing[*]}" >&2
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >&2
fi

# Make sure OpenBLAS (not the reference BLAS) is the libblas.so.3 torch resolves.
alt=libblas.so.3-x86_64-linux-gnu
current="$(update-alternatives --query "$alt" 2>/dev/null | sed -n 's/^Value: //p')"
case "$current" in
  *openblas*) ;;
  *)
    target="$(update-alternatives --list "$alt" 2>/dev/null | grep openblas | head -1 || true)"
    if [ -z "$target" ]; then echo "setup-pytorch: no OpenBLAS alternative for $alt" >&2; exit 1; fi
    echo "setup-pytorch: selecting $target for $alt (was ${current:-unset})" >&2
    [ "$(id -u)" = 0 ] && update-alternatives --set "$alt" "$target" >&2 || sudo update-alternatives --set "$alt" "$target" >&2
    ;;
esac

OMP_NUM_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads" "$py" - "$threads" <<'PY'
import json, sys, time
import torch
threads = int(sys.argv[1])
torch.set_num_threads(threads)
libs = sorted({l.split()[-1] for l in open("/proc/self/maps") if "blas" in l.lower() and ".so" in l})
a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
a @ b
n = 8; t = time.perf_counter()
for _ in range(n):
    a @ b
gflops = 2 * 1024 ** 3 * n / (time.perf_counter() - t) / 1e9
print(json.dumps({"python": sys.executable, "torch": torch.__version__, "threads": torch.get_num_threads(),
                  "blasLibraries": libs, "openblas": any("openblas" in l for l in libs),
                  "sgemm1024Gflops": round(gflops, 1), "quantizedEngines": torch.backends.quantized.supported_engines}))
PY
