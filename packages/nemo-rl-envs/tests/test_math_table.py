"""math_reward against a table of (response, answer, expected) cases and against math-verify.

Each row is (response, ground truth, expected reward, math-verify's verdict[, why they differ]).
math-verify's verdict is its own documented use, `verify(parse("$" + gold + "$"),
parse(response))` (GSM8K's "#### 72" gives the gold "72"); `test_math_verify_still_behaves_so`
re-checks that column, so a new math-verify release that changes a verdict shows up here. Where
the two differ the row says which is right and why, and `math_reward` follows that
(`nemo_rl_envs.math_reward` lists the departures).
"""

from __future__ import annotations

import pytest
from nemo_rl_envs import math_reward

CASES = [
    # ---- latex
    (r"\boxed{\frac{1}{2}}", "1/2", 1, 1),
    (r"\boxed{\dfrac{3}{4}}", "0.75", 1, 1),
    (r"\boxed{\sqrt{2}}", r"\sqrt2", 1, 1),
    (r"\boxed{2\sqrt{2}}", r"\sqrt{8}", 1, 1),
    (r"\boxed{\frac{\pi}{2}}", r"\pi/2", 1, 1),
    (r"\boxed{x^2+2x+1}", "(x+1)^2", 1, 1),
    (r"\boxed{\left(1, 2\right)}", "(1,2)", 1, 1),
    (r"\boxed{[0, 1)}", "[0,1)", 1, 1),
    (r"\boxed{[0, 1]}", "[0,1)", 0, 0),
    (r"\boxed{\infty}", r"\infty", 1, 1),
    (r"\boxed{-\frac{1}{3}}", "-1/3", 1, 1),
    (r"\boxed{10^{3}}", "1000", 1, 1),
    (r"\boxed{1.5\times10^{3}}", "1500", 1, 1),
    (r"\boxed{x = 5}", "5", 1, 1),
    (r"\boxed{\{1, 2\}}", r"\{2, 1\}", 1, 1),
    (r"So the answer is $\frac{\sqrt{3}}{2}$.", r"\frac{\sqrt3}{2}", 1, 1),
    ("So $x = 5$.", "5", 1, 1),
    (r"Hence \(\frac{3}{4}\).", "3/4", 1, 1),
    ("We had $x = 2$, so 5 apples", "5", 1, 1),
    (r"\boxed{\frac{1}{2}}", r"\frac{1}{3}", 0, 0),
    (r"\boxed{\sqrt{3}}", "1.732", 0, 0),
    # ---- fraction
    (r"\boxed{2/4}", "1/2", 1, 1),
    (r"\boxed{\frac{6}{8}}", r"\frac34", 1, 1),
    (r"\boxed{1\frac{1}{2}}", "3/2", 1, 1),
    ("so the ratio is 3/4", "3/4", 1, 1),
    ("the ratio is 3 / 4.", "0.75", 1, 1),
    (r"\boxed{\frac{2}{3}}", "3/2", 0, 0),
    # ---- decimal
    (r"\boxed{0.5}", r"\frac{1}{2}", 1, 1),
    (r"\boxed{0.25}", "1/4", 1, 1),
    (r"\boxed{0.125}", "1/8", 1, 1),
    (r"\boxed{1.50}", "1.5", 1, 1),
    (r"\boxed{3.0}", "3", 1, 1),
    (r"\boxed{\frac{1}{3}}", "0.333333", 1, 1),
    (r"\boxed{\frac{1}{3}}", "0.33", 0, 0),
    (r"\boxed{0.66}", "2/3", 0, 0),
    (r"\boxed{3}", "3.0001", 0, 0),
    # ---- units
    (r"\boxed{5\text{ cm}}", "5", 1, 1),
    (r"\boxed{12 \text{ dollars}}", "12", 1, 1),
    ("The answer is 12 dollars", "12", 1, 1),
    (r"\boxed{45^\circ}", "45", 1, 1),
    (r"\boxed{\$18}", "18", 1, 1),
    (r"\boxed{18}", r"\$18", 1, 1),
    (r"\boxed{3\,\mathrm{m}}", "3", 1, 1),
    (r"\boxed{10 \text{ km/h}}", "10", 1, 1),
    (r"\boxed{5}", r"5\text{ cm}", 1, 1),
    (r"\boxed{6\text{ cm}}", "5", 0, 0),
    # ---- percent
    (r"\boxed{50\%}", "50", 1, 1),
    (r"\boxed{50\%}", "0.5", 1, 1),
    (r"\boxed{20}", r"20\%", 1, 1),
    (r"\boxed{0.2}", r"20\%", 1, 1),
    (r"\boxed{12.5\%}", "12.5", 1, 0,
     "math-verify drops the % against whole numbers only (50% = 50) and reads 12.5% as "
     "0.125; a percentage is the same answer with or without its sign, so ours drops it on "
     "either side"),
    (r"\boxed{12.5\%}", "0.125", 1, 1),
    ("The discount is 25%.", "25", 1, 1),
    (r"\boxed{30\%}", "25", 0, 0),
    # ---- boxes
    (r"First \boxed{2}, on reflection \boxed{3}", "3", 1, 0,
     "math-verify joins all boxes into the set {2, 3}; a revised answer replaces the "
     "tentative one, so ours grades the last box"),
    (r"First \boxed{2}, on reflection \boxed{3}", "2", 0, 0),
    (r"The roots are \boxed{2} and \boxed{3}", "2, 3", 1, 1),
    (r"The roots are \boxed{2} and \boxed{3}", "3", 1, 0,
     "ambiguous without reading the prose: ours grades the last box as for a revision "
     "(boxing extra answers gains nothing, only the last counts); math-verify's set reading "
     "scores 0"),
    (r"\boxed{2} \boxed{3} \boxed{4}", "2, 3", 0, 0),
    (r"\boxed{2, 3}", "2,3", 1, 1),
    (r"\boxed{3, 2}", "2, 3", 1, 1),
    (r"\boxed{3} and a cut-off \boxed{\frac{1", "3", 1, 1),
    (r"I think 7. \boxed{8}", "7", 0, 0),
    # ---- thousands
    ("The total is 1,000", "1000", 1, 1),
    (r"\boxed{1,000}", "1000", 1, 1),
    (r"\boxed{1{,}000}", "1000", 1, 1),
    (r"\boxed{1\,000}", "1000", 1, 0,
     "\\, is LaTeX's thin-space thousands grouping (like {,}); math-verify reads 1 * 000 = 0"),
    (r"\boxed{1000}", "1,000", 1, 1),
    ("1,234,567 grains", "1234567", 1, 1),
    (r"\boxed{12,345.6}", "12345.6", 1, 1),
    ("about 1 000 people", "1000", 1, 1),
    ("I have 2 apples and 100 pears", "100", 1, 1),
    ("I paid 1,250 dollars, then 3.75 more", "1250", 0, 0),
    # ---- no answer
    ("", "3", 0, 0),
    ("I don't know", "3", 0, 0),
    (r"\boxed{}", "3", 0, 0),
    ("The answer is three", "3", 0, 0),
    (r"\boxed{\frac{{{}", "3", 0, 0),
    ("Let me think step by step", "0", 0, 0),
    # ---- other
    ("it is -5", "-5", 1, 1),
    ("x = -3", "-3", 1, 1),
    (r"\boxed{-3}", "3", 0, 0),
    ("so the total is 72", "Natalia sold 24 in May.\n#### 72", 1, 1),
    ("7 is wrong; it is 8", "8", 1, 1),
]


def _id(case: tuple) -> str:
    return f"{case[0][:40]} vs {case[1][:20]}"


def test_the_table_covers_every_kind_of_answer():
    assert len(CASES) >= 60
    kinds = {
        "latex": r"\frac", "fractions": "/", "decimals": "0.", "units": r"\text", "percent": "%",
        "several boxes": r"} \boxed", "thousands": "1,000", "no answer": "three",
    }
    for kind, mark in kinds.items():
        assert any(mark in response for response, *_ in CASES), kind


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_math_reward(case):
    response, answer, expected, *_ = case
    assert math_reward("problem", response, answer) == float(expected)


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_math_verify_still_behaves_so(case):
    from math_verify import parse, verify

    response, answer, expected, verdict, *why = case
    gold = answer.rsplit("####", 1)[1].strip() if "####" in answer else answer
    assert int(bool(verify(parse(f"${gold}$"), parse(response)))) == verdict
    assert bool(why) == (verdict != expected), "a disagreement with math-verify needs its reason"
