"""Issue #18 item 1: without a terminal, a run prints its step, rate and ETA periodically."""

from __future__ import annotations

import time

from nemo_rl.trainers.progress import PlainProgress, RunProgress, progress_interval


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_lines_at_the_first_step_every_interval_and_the_last_step():
    clock, lines = FakeClock(), []
    plain = PlainProgress(10, emit=lines.append, interval=30, clock=clock)
    for _ in range(10):
        clock.now += 10  # 10 s a step: a line at most every 3 steps
        plain.advance({"loss": 1.5, "ignored": 2.0})
    assert [line.split(" | ")[0] for line in lines] == [
        "step 1/10 (10%)", "step 4/10 (40%)", "step 7/10 (70%)", "step 10/10 (100%)"
    ]
    assert lines[1] == "step 4/10 (40%) | 10.00 s/step | elapsed 0:40 | ETA 1:00 | loss=1.5"


def test_a_resumed_run_counts_its_rate_from_where_it_started():
    clock, lines = FakeClock(), []
    plain = PlainProgress(100, start_step=90, emit=lines.append, interval=None, clock=clock)
    clock.now = 2.0
    plain.advance({})
    assert lines == ["step 91/100 (91%) | 2.00 s/step | elapsed 0:02 | ETA 0:18"]


def test_a_long_step_gets_a_heartbeat_naming_its_phase():
    lines: list[str] = []
    plain = PlainProgress(5, emit=lines.append, interval=0.05)
    plain.start()
    plain.phase("rollout")
    time.sleep(0.4)
    plain.stop()
    assert lines and lines[0].startswith("step 1/5: rollout (")


def test_run_progress_without_a_terminal_prints_plain_lines(capsys, monkeypatch):
    monkeypatch.setenv("NEMO_RL_PROGRESS_INTERVAL", "0")
    assert progress_interval() == 0
    with RunProgress(total_steps=3, enabled=False) as progress:
        for _ in range(3):
            progress.phase("train")
            progress.advance({"loss": 0.25})
    err = capsys.readouterr().err
    assert [line.split(" | ")[0] for line in err.splitlines() if line.startswith("step")] == [
        "step 1/3 (33%)", "step 2/3 (66%)", "step 3/3 (100%)"
    ]
    assert "ETA" in err and "loss=0.25" in err
