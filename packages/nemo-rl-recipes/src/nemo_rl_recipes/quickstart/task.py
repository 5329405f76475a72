"""The quickstart's synthetic task: the sum of three digits, with a mixed-format SFT set.

Every problem is a prompt such as `3+5+2=` whose answer is `10`. All 1,000 digit triples exist;
a fixed, seeded split holds 200 out for validation, so validation prompts are never trained on.

The SFT answers come from two "annotators": one writes the bare number, the other a sentence
(`The answer is 10`). The reward accepts only the bare number, so the SFT model is right in
substance more often than in form, and GRPO has something visible to learn: the required format,
plus whatever arithmetic the SFT phase left unfinished.

Example:
    >>> train, val = make_sum_task(seed=0)
    >>> len(train), len(val), sorted(train[0])
    (800, 200, ['answer', 'prompt'])
    >>> sft_rows(train[:2], seed=0)[0]["answer"] in (train[0]["answer"], f"The answer is {train[0]['answer']}")
    True
"""

from __future__ import annotations

import itertools
import random
from typing import Any

NUM_VALIDATION = 200


def make_sum_task(seed: int = 0) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(train rows, validation rows), each {"prompt": "a+b+c=", "answer": "<sum>"}."""
    rows = [
        {"prompt": f"{a}+{b}+{c}=", "answer": str(a + b + c)}
        for a, b, c in itertools.product(range(10), repeat=3)
    ]
    random.Random(seed).shuffle(rows)
    return rows[NUM_VALIDATION:], rows[:NUM_VALIDATION]


def sft_rows(rows: list[dict[str, str]], seed: int = 0, sentence_fraction: float = 0.6) -> list[dict[str, str]]:
    """The SFT set: each answer is the bare number or, for `sentence_fraction` of rows, a sentence."""
    rng = random.Random(seed + 1)
    return [
        {**row, "answer": f"The answer is {row['answer']}" if rng.random() < sentence_fraction else row["answer"]}
        for row in rows
    ]


def exact_match(prompt: str, response: str, answer: str, **_: Any) -> float:
    """1.0 when the response is exactly the expected number (surrounding whitespace ignored)."""
    return float(response.strip() == answer)
