"""Make nemo_rl_vllm importable where it is not installed (the main `uv run pytest` environment:
the package stays out of the uv workspace so that `uv sync` never pulls vLLM). Its modules import
vLLM only when an engine is built, so their doctests and the engine-free tests run there; the
engine tests skip themselves without vLLM (`nox -s vllm` runs them)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

if importlib.util.find_spec("nemo_rl_vllm") is None:
    sys.path.insert(0, str(Path(__file__).parent / "src"))
