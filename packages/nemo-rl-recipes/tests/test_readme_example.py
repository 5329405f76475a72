"""The README's "A GRPO script in 10 lines" runs as written, only its model path replaced."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import pytest
import torch
from nemo_rl_recipes.quickstart.run import SFT_SETTINGS

README = Path(__file__).resolve().parents[3] / "README.md"
HEADING = "## A GRPO script in 10 lines"


def readme_example() -> str:
    """The first ```python block after the heading of the 10-line GRPO script."""
    text = README.read_text(encoding="utf-8")
    assert HEADING in text, f"README.md lost its section {HEADING!r}"
    match = re.search(r"```python\n(.*?)```", text[text.index(HEADING) :], re.DOTALL)
    assert match, f"no ```python block after {HEADING!r} in README.md"
    return match.group(1)


def test_example_is_ten_lines_of_code():
    code = [line for line in readme_example().splitlines() if line.strip()]
    assert len(code) <= 10, code


def test_example_model_path_is_where_the_quickstart_leaves_its_sft_model():
    # The README says the path is the SFT model `nemo-rl quickstart` leaves behind.
    expected = f'"runs/quickstart/sft/checkpoints/step_{SFT_SETTINGS["max_num_steps"]}"'
    assert readme_example().count(expected) == 1


def test_example_runs_as_written(quick_stop_model: Path, in_tmp_dir: Path):
    from transformers import AutoModelForCausalLM

    quickstart_path = f'"runs/quickstart/sft/checkpoints/step_{SFT_SETTINGS["max_num_steps"]}"'
    source = readme_example().replace(quickstart_path, json.dumps(str(quick_stop_model)))
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        exec(compile(source, "README.md", "exec"), {"__name__": "__main__"})

    # Its last line prints the final mean reward and the last checkpoint.
    reward, checkpoint = stdout.getvalue().strip().splitlines()[-1].split()
    assert 0.0 <= float(reward) <= 1.0
    assert checkpoint == str(Path("results/checkpoints/step_5"))  # max_num_steps=5, default dir
    model = AutoModelForCausalLM.from_pretrained(in_tmp_dir / checkpoint)
    assert model.config.model_type == "llama"
    assert all(torch.isfinite(p).all() for p in model.parameters())

    records = [
        json.loads(line)
        for line in (in_tmp_dir / "logs" / "metrics.jsonl").read_text().splitlines()
    ]
    steps = [r for r in records if "reward/mean" in r]
    assert [r["step"] for r in steps] == [1, 2, 3, 4, 5]
    # 8 prompts x the default 16 generations; the quick-stop model answers with EOS at once.
    assert all(r["response_length/mean"] == pytest.approx(1.0) for r in steps)
    assert (in_tmp_dir / "logs" / "curves.png").stat().st_size > 0
