#!/usr/bin/env bash
# A CPU-only environment from the same uv.lock: every locked package except CUDA torch and the
# NVIDIA/CUDA libraries it pulls in, then the CPU build of the locked torch version from PyTorch's
# CPU index. For a machine without a GPU, where `uv sync` would fetch ~3 GiB of CUDA wheels that
# it never uses (README, "On a CPU-only machine", has the measured figures).
#
#   scripts/sync-cpu.sh            # then: export UV_NO_SYNC=1; uv run nemo-rl quickstart
#
# `uv run` syncs to the lock before it runs, which would put CUDA torch back; UV_NO_SYNC=1 tells it
# to use the environment as it is. Extra arguments go to `uv sync` (e.g. --python 3.12).
# TORCH_CPU_INDEX (an index URL, or a folder of wheels) and TORCH_CPU_REQUIREMENT (default: the
# locked `torch==X`) choose another source or version.
set -euo pipefail
cd "$(dirname "$0")/.."

index="${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}"
# The packages that only CUDA torch needs, read from the lock so that a torch upgrade needs no edit.
skip=()
for name in $(grep -oP '^name = "\K(nvidia-[^"]+|cuda-[^"]+|triton|torch)(?=")' uv.lock | sort -u); do
    skip+=(--no-install-package "$name")
done
uv sync --locked "${skip[@]}" "$@"

venv="${UV_PROJECT_ENVIRONMENT:-.venv}"
requirements="$(mktemp)"
trap 'rm -f "$requirements"' EXIT
if [[ -n "${TORCH_CPU_REQUIREMENT:-}" ]]; then
    echo "$TORCH_CPU_REQUIREMENT" >"$requirements"
else
    # One `torch==X ; <python marker>` line per locked torch; pip markers pick this Python's.
    uv export --frozen --no-hashes --no-header --no-annotate | grep -E '^torch==' >"$requirements"
fi
if [[ -d "$index" ]]; then
    source_args=(--no-index --find-links "$index")
else
    source_args=(--index-url "$index")
fi
# --no-deps: torch's other dependencies (sympy, networkx, ...) came from the lock above.
uv pip install --python "$venv/bin/python" --no-deps "${source_args[@]}" -r "$requirements"
"$venv/bin/python" -c 'import torch; print(f"torch {torch.__version__} (CUDA: {torch.version.cuda}) in '"$venv"'")'
echo "CPU environment ready; run commands with UV_NO_SYNC=1 (e.g. UV_NO_SYNC=1 uv run pytest)"
