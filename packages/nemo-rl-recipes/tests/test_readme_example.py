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


def run_example(model: Path) -> tuple[float, Path]:
    """Run the README's script with `model`; (the reward and the checkpoint its last line prints)."""
    source = re.sub(
        r'from_pretrained\("[^"]*"', f"from_pretrained({json.dumps(str(model))}", readme_example()
    )
    assert json.dumps(str(model)) in source
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        exec(compile(source, "README.md", "exec"), {"__name__": "__main__"})
    reward, checkpoint = stdout.getvalue().strip().splitlines()[-1].split()
    return float(reward), Path(checkpoint)


def test_example_runs_as_written(quick_stop_model: Path, in_tmp_dir: Path):
    from transformers import AutoModelForCausalLM

    # Its last line prints the final mean reward and the last checkpoint.
    reward, checkpoint = run_example(quick_stop_model)
    assert 0.0 <= reward <= 1.0
    # max_num_steps=5, in the run's own directory runs/grpo-<YYYYmmdd-HHMMSS>
    run_dir = checkpoint.parents[1]
    assert checkpoint.name == "step_5" and checkpoint.parent.name == "checkpoints"
    assert run_dir.parent == Path("runs") and re.fullmatch(r"grpo-\d{8}-\d{6}", run_dir.name)
    model = AutoModelForCausalLM.from_pretrained(in_tmp_dir / checkpoint)
    assert model.config.model_type == "llama"
    assert all(torch.isfinite(p).all() for p in model.parameters())

    records = [
        json.loads(line)
        for line in (in_tmp_dir / run_dir / "metrics.jsonl").read_text().splitlines()
    ]
    steps = [r for r in records if "reward/mean" in r]
    assert [r["step"] for r in steps] == [1, 2, 3, 4, 5]
    # 8 prompts x the default 16 generations; the quick-stop model answers with EOS at once.
    assert all(r["response_length/mean"] == pytest.approx(1.0) for r in steps)
    assert (in_tmp_dir / run_dir / "curves.png").stat().st_size > 0


def test_example_run_twice_trains_twice(quick_stop_model: Path, in_tmp_dir: Path):
    # The second run must not resume the first (finished) one: it trains its own 5 steps in its
    # own directory and prints its own reward.
    first_reward, first = run_example(quick_stop_model)
    second_reward, second = run_example(quick_stop_model)
    assert first.parents[1] != second.parents[1]
    assert first.name == second.name == "step_5"
    for checkpoint in (first, second):
        steps = [
            json.loads(line)["step"]
            for line in (checkpoint.parents[1] / "metrics.jsonl").read_text().splitlines()
            if "reward/mean" in line
        ]
        assert steps == [1, 2, 3, 4, 5]
    assert 0.0 <= first_reward <= 1.0 and 0.0 <= second_reward <= 1.0
