"""exact_match_reward: normalisation, extraction modes and multiple accepted answers."""

from __future__ import annotations

import pytest
from nemo_rl_envs import answer_after_marker, exact_match_reward, make_exact_match_reward


@pytest.mark.parametrize(
    ("response", "answer", "reward"),
    [
        ("Paris", "paris", 1.0),
        ("  The   Eiffel  Tower. ", "the eiffel tower", 1.0),
        ("**Paris**", "Paris", 1.0),
        ("Let me think.\nIt is in France.\nAnswer: Paris", "Paris", 1.0),
        ("Answer: Lyon\nActually the final answer: Paris.", "Paris", 1.0),
        ("Reasoning first.\nParis", "Paris", 1.0),  # no marker: the last line
        ("Paris is the capital", "Paris", 0.0),
        ("Answer: Paname", ["Paris", "Paname"], 1.0),
        ("", "Paris", 0.0),
        ("Answer:", "", 0.0),  # an empty answer never matches
    ],
)
def test_exact_match_reward(response, answer, reward):
    assert exact_match_reward("Capital of France?", response, answer) == reward


def test_extraction_modes():
    response = "I believe\nAnswer: Paris\nHope this helps"
    assert answer_after_marker(response) == "Paris"
    assert make_exact_match_reward("marker")("", response, "Paris") == 1.0
    assert make_exact_match_reward("last_line")("", response, "Paris") == 0.0
    assert make_exact_match_reward("marker")("", "Paris", "Paris") == 0.0  # marker required
    assert make_exact_match_reward("none")("", " paris ", "Paris") == 1.0
    assert make_exact_match_reward("none", case_sensitive=True)("", "paris", "Paris") == 0.0


def test_unknown_extract_mode_lists_the_options():
    with pytest.raises(ValueError, match=r"extract='first'.*'auto', 'marker', 'last_line', 'none'"):
        make_exact_match_reward("first")
