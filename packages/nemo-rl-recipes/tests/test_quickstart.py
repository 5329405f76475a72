"""The embedded quickstart, run as `nemo-rl quickstart` runs it: GRPO must beat SFT by 10 points.

This is the README's main command end to end (tiny model built offline, SFT, GRPO). Its time is
printed, not asserted: timing claims come from benchmarks, not tests.
"""

from __future__ import annotations

import re

import pytest
from nemo_rl.cli.main import main
from nemo_rl_recipes.quickstart import make_sum_task, sft_rows
from nemo_rl_recipes.quickstart.task import exact_match

LAST_LINE = re.compile(r"^accuracy after SFT (\d+\.\d)%, after GRPO (\d+\.\d)%, (\d+) s$")


def test_task_split_is_disjoint_and_sft_answers_keep_the_sum():
    train, val = make_sum_task(seed=0)
    assert len(train) == 800 and len(val) == 200
    assert not {r["prompt"] for r in train} & {r["prompt"] for r in val}
    a, b, c = (int(x) for x in val[0]["prompt"].rstrip("=").split("+"))
    assert val[0]["answer"] == str(a + b + c)
    mixed = sft_rows(train, seed=0)
    sentences = sum(r["answer"].startswith("The answer is ") for r in mixed)
    assert 0.5 < sentences / len(mixed) < 0.7  # 60% sentences, by construction
    assert all(m["answer"].endswith(r["answer"]) for m, r in zip(mixed, train, strict=True))
    assert exact_match("1+2+3=", " 6 ", "6") == 1.0
    assert exact_match("1+2+3=", "The answer is 6", "6") == 0.0


@pytest.mark.slow
def test_quickstart_grpo_beats_sft_by_ten_points(tmp_path, capsys):
    assert main(["quickstart", "--workdir", str(tmp_path / "qs")]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    match = LAST_LINE.match(out[-1])
    assert match, out[-1]
    sft, grpo, seconds = float(match[1]), float(match[2]), int(match[3])
    print(f"quickstart: SFT {sft}%, GRPO {grpo}%, {seconds} s")
    assert grpo - sft >= 10.0, out[-1]
    assert (tmp_path / "qs" / "grpo" / "curves.png").stat().st_size > 0
    assert (tmp_path / "qs" / "grpo" / "metrics.jsonl").exists()
