"""GuessNumberEnvironment: multi-turn state transitions, shaped rewards, observations."""

from __future__ import annotations

import pytest
from nemo_rl.environments import EnvironmentPool
from nemo_rl_envs import GuessNumberEnvironment


def play(env, row, guesses):
    """Run the game with scripted guesses; return the steps."""
    conversation = [{"role": "user", "content": "guess"}]
    steps = []
    for guess in guesses:
        conversation.append({"role": "assistant", "content": guess})
        step = env.step([list(conversation)], [row])
        steps.append(step)
        if step.done[0]:
            break
        conversation.append(step.observations[0])
    return steps


def test_higher_lower_then_solved_with_turn_shaped_reward():
    steps = play(
        GuessNumberEnvironment(max_turns=5, turn_penalty=0.25),
        {"target": 42},
        ["50", "I say 30", "42"],
    )
    assert [s.observations[0] for s in steps[:2]] == [
        {"role": "user", "content": "lower: the number is less than 50"},
        {"role": "user", "content": "higher: the number is greater than 30"},
    ]
    assert [s.done[0] for s in steps] == [False, False, True]
    assert [s.rewards["guess_number"].item() for s in steps] == [0.0, 0.0, 0.5]
    assert steps[-1].observations == [None]
    assert steps[-1].metadata[0] == {"target": 42, "turns": 3, "solved": True}
    assert steps[-1].metrics == {"solved": 1.0}


def test_first_guess_right_scores_one_and_running_out_of_turns_scores_zero():
    assert (
        play(GuessNumberEnvironment(), {"target": 3}, ["3"])[0].rewards["guess_number"].item()
        == 1.0
    )
    steps = play(GuessNumberEnvironment(max_turns=2), {"target": 3}, ["1", "2", "3"])
    assert len(steps) == 2 and steps[-1].done == [True]
    assert steps[-1].rewards["guess_number"].item() == 0.0
    assert steps[-1].metadata[0]["solved"] is False and steps[-1].observations == [None]


def test_a_reply_without_a_number_asks_again_and_costs_a_turn():
    steps = play(GuessNumberEnvironment(max_turns=3, turn_penalty=0.5), {"target": 9}, ["hmm", "9"])
    assert steps[0].observations[0]["content"] == "Please answer with one whole number."
    assert steps[1].rewards["guess_number"].item() == 0.5


def test_batches_mix_finished_and_continuing_games_and_run_in_threads():
    rows = [{"target": 1}, {"target": 2}, {"target": 3}, {"target": 4}]
    convos = [
        [{"role": "user", "content": "g"}, {"role": "assistant", "content": "2"}] for _ in rows
    ]
    step = EnvironmentPool(GuessNumberEnvironment(), mode="threads", max_workers=2).step(
        convos, rows
    )
    assert step.done == [False, True, False, False]
    assert [o and o["content"].split(":")[0] for o in step.observations] == [
        "lower",
        None,
        "higher",
        "higher",
    ]
    assert step.metrics == {"solved": 1.0}


def test_make_rows_is_seeded_and_in_range():
    rows = GuessNumberEnvironment.make_rows(20, low=5, high=8, seed=1)
    assert rows == GuessNumberEnvironment.make_rows(20, low=5, high=8, seed=1)
    assert all(5 <= r["target"] <= 8 for r in rows) and "between 5 and 8" in rows[0]["prompt"]


def test_errors_name_the_missing_piece():
    env = GuessNumberEnvironment()
    with pytest.raises(ValueError, match=r"sample 0's metadata has no 'target'.*make_rows"):
        env.step([[{"role": "assistant", "content": "1"}]], [{"answer": 1}])
    with pytest.raises(ValueError, match="no assistant message"):
        env.step([[{"role": "user", "content": "go"}]], [{"target": 1}])
    with pytest.raises(ValueError, match="max_turns=0"):
        GuessNumberEnvironment(max_turns=0)
