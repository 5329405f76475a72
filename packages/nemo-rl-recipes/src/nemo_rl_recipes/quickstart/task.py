"""The quickstart's synthetic task: the sum of three digits, split so that held-out means unseen.

Every problem is a prompt such as `3+5+2=` whose answer is `10`. All 1,000 ordered digit triples
exist, but only 220 multisets: `3+5+2`, `2+3+5` and `5+2+3` are one problem in another order, with
the same answer. The split is therefore by multiset (the sorted digits): every ordering of a
multiset lands in the same split, so no dev or test prompt is a reordering of a training prompt.
The split is stratified by sum (the multisets of each sum are dealt out train, train, dev, test,
train, ...), so every answer the test asks for also occurs in training, and it is fixed: it does not
depend on the run's seed, and the test split is the same for every run.

- train (~60% of multisets): SFT and GRPO prompts.
- dev (~20%): every choice of the recipe (model size, step counts, learning rates, reward) was made
  on it; in each run, GRPO's validation runs on it and picks the checkpoint that is reported.
- test (~20%): only the reported line; nothing is trained or tuned on it.

The SFT answers come from two "annotators": one writes the bare number, the other a sentence
(`The answer is 10`). Two metrics are scored separately, so that format cannot pass for skill:
`correct` (the last integer in the response is the sum, whatever the wording) and `well_formatted`
(the response is a bare integer, right or wrong).

Example:
    >>> split = make_sum_task()
    >>> [len(split[name]) for name in ("train", "dev", "test")]
    [611, 210, 179]
    >>> overlapping_multisets(split["train"], split["test"])
    set()
    >>> correct("1+2+3=", "The answer is 6", "6"), well_formatted("1+2+3=", "The answer is 6", "6")
    (1.0, 0.0)
"""

from __future__ import annotations

import itertools
import random
import re
from collections import defaultdict
from typing import Any

Row = dict[str, str]
# The deal for each sum's multisets: the first is always trained on, so every answer is learnable.
_DEAL = ("train", "train", "dev", "test", "train")
_INTEGER = re.compile(r"-?\d+")


def multiset_key(prompt: str) -> tuple[int, ...]:
    """The problem behind a prompt, whatever the order of its terms: `'3+5+2='` -> `(2, 3, 5)`.

    Example:
        >>> multiset_key("3+5+2=") == multiset_key("2+3+5=")
        True
    """
    return tuple(sorted(int(term) for term in prompt.rstrip("=").split("+")))


def overlapping_multisets(rows_a: list[Row], rows_b: list[Row]) -> set[tuple[int, ...]]:
    """The multisets that occur in both sets of rows (empty when they are truly disjoint).

    Example:
        >>> overlapping_multisets([{"prompt": "1+2+3="}], [{"prompt": "3+2+1="}, {"prompt": "0+0+1="}])
        {(1, 2, 3)}
    """
    return {multiset_key(r["prompt"]) for r in rows_a} & {multiset_key(r["prompt"]) for r in rows_b}


def make_sum_task(split_seed: int = 0) -> dict[str, list[Row]]:
    """{"train", "dev", "test"}: rows {"prompt": "a+b+c=", "answer": "<sum>"}, disjoint as multisets.

    Example:
        >>> make_sum_task()["test"][0]["prompt"].count("+")
        2
    """
    by_sum: dict[int, list[tuple[int, ...]]] = defaultdict(list)
    for multiset in itertools.combinations_with_replacement(range(10), 3):
        by_sum[sum(multiset)].append(multiset)
    rng = random.Random(split_seed)
    split_of: dict[tuple[int, ...], str] = {}
    for total in sorted(by_sum):
        multisets = by_sum[total]
        rng.shuffle(multisets)
        for i, multiset in enumerate(multisets):
            split_of[multiset] = _DEAL[i % len(_DEAL)]
    split: dict[str, list[Row]] = {"train": [], "dev": [], "test": []}
    for a, b, c in itertools.product(range(10), repeat=3):
        split[split_of[tuple(sorted((a, b, c)))]].append(
            {"prompt": f"{a}+{b}+{c}=", "answer": str(a + b + c)}
        )
    for rows in split.values():
        rng.shuffle(rows)
    return split


def sft_rows(rows: list[Row], seed: int = 0, sentence_fraction: float = 0.5) -> list[Row]:
    """The SFT set: each answer is the bare number or, for `sentence_fraction` of rows, a sentence.

    Example:
        >>> sft_rows([{"prompt": "1+2+3=", "answer": "6"}], sentence_fraction=1.0)[0]["answer"]
        'The answer is 6'
    """
    rng = random.Random(seed + 1)
    return [
        {
            **row,
            "answer": f"The answer is {row['answer']}"
            if rng.random() < sentence_fraction
            else row["answer"],
        }
        for row in rows
    ]


def last_integer(response: str) -> str | None:
    """The last integer written in a response (None when there is none).

    Example:
        >>> last_integer("The answer is 12."), last_integer("twelve")
        ('12', None)
    """
    found = _INTEGER.findall(response)
    return str(int(found[-1])) if found else None


def correct(prompt: str, response: str, answer: str, **_: Any) -> float:
    """1.0 when the response's last integer is the answer, whatever the wording around it.

    Example:
        >>> correct("1+2+3=", "6", "6"), correct("1+2+3=", "It is 6", "6"), correct("1+2+3=", "7", "6")
        (1.0, 1.0, 0.0)
    """
    return float(last_integer(response) == answer)


def well_formatted(prompt: str, response: str, answer: str, **_: Any) -> float:
    """1.0 when the response is a bare integer (the required format), right or wrong.

    Example:
        >>> well_formatted("1+2+3=", " 7 ", "6"), well_formatted("1+2+3=", "The answer is 6", "6")
        (1.0, 0.0)
    """
    return float(re.fullmatch(r"\d+", response.strip()) is not None)
