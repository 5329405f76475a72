"""Make nemo_rl_megatron importable where it is not installed (the main `uv run pytest`
environment: the package stays out of the uv workspace because megatron-core needs Python 3.12
and CUDA). The conversion, sharding and vocab-parallel modules are pure torch, so their tests and
doctests run there; tests that build a Megatron model skip themselves without megatron-core
(`nox -s megatron` installs it)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

if importlib.util.find_spec("nemo_rl_megatron") is None:
    sys.path.insert(0, str(Path(__file__).parent / "src"))
