"""A multi-turn game showing the environment protocol: guess the hidden number in few turns.

Each `step` sees every conversation so far. The last assistant message is the guess (its last
whole number); the environment answers with a user message, "higher" or "lower", until the guess
is right (done, reward `1 - turn_penalty * (turns - 1)`, at least 0) or `max_turns` guesses are
spent (done, reward 0). The environment keeps no state between calls: the turn count is the
number of assistant messages, and the hidden number is the row's `target`, so it is safe to step
from several threads.

Example:
    >>> env = GuessNumberEnvironment(max_turns=3)
    >>> row = {"target": 7}
    >>> convo = [{"role": "user", "content": "Guess 1-10"}, {"role": "assistant", "content": "5"}]
    >>> step = env.step([convo], [row])
    >>> step.observations[0]["content"], step.done[0]
    ('higher: the number is greater than 5', False)
    >>> convo += [step.observations[0], {"role": "assistant", "content": "It is 7"}]
    >>> step = env.step([convo], [row])
    >>> step.done[0], round(step.rewards["guess_number"].item(), 4)
    (True, 0.9)
"""

from __future__ import annotations

import random
import re
from typing import Any

import torch
from nemo_rl.environments import RewardEnvStep
from nemo_rl.protocols import Message

_INTEGER = re.compile(r"-?\d+")


def parse_guess(text: str) -> int | None:
    """The last whole number in `text`, or None.

    Example:
        >>> parse_guess("maybe 12, no, 15?")
        15
    """
    found = _INTEGER.findall(text or "")
    return int(found[-1]) if found else None


class GuessNumberEnvironment:
    """Guess-the-number game; rows carry `target` (and optionally `low`/`high` for the prompt).

    Rewards: one component, `guess_number`; metrics: `solved` (count of samples solved this step).
    Per-sample metadata returned: the row plus `turns` and `solved`.
    """

    def __init__(self, max_turns: int = 5, turn_penalty: float = 0.1) -> None:
        if max_turns < 1:
            raise ValueError(f"GuessNumberEnvironment max_turns={max_turns}; use 1 or more")
        if not 0.0 <= turn_penalty <= 1.0:
            raise ValueError(
                f"GuessNumberEnvironment turn_penalty={turn_penalty}; use a value in [0, 1]"
            )
        self.max_turns = max_turns
        self.turn_penalty = turn_penalty

    @staticmethod
    def make_rows(n: int, low: int = 1, high: int = 100, seed: int = 0) -> list[dict[str, Any]]:
        """`n` dataset rows with a prompt and a hidden `target` in [low, high].

        Example:
            >>> GuessNumberEnvironment.make_rows(1, 1, 10)[0]["prompt"][:30]
            "I'm thinking of a whole number"
        """
        if low > high:
            raise ValueError(f"make_rows: low={low} is above high={high}")
        rng = random.Random(seed)
        prompt = (
            f"I'm thinking of a whole number between {low} and {high}. Guess it: answer with "
            "one number; I will say higher or lower."
        )
        return [
            {"prompt": prompt, "target": rng.randint(low, high), "low": low, "high": high}
            for _ in range(n)
        ]

    def _score(self, conversation: list[Message], row: dict[str, Any], index: int) -> tuple:
        """(reward, observation, done, turns, solved) for one conversation."""
        if "target" not in row:
            raise ValueError(
                f"GuessNumberEnvironment: sample {index}'s metadata has no 'target' (it has "
                f"{sorted(row)}); build rows with GuessNumberEnvironment.make_rows(...) or add "
                "the hidden number as 'target'"
            )
        target = int(row["target"])
        replies = [m for m in conversation if m.get("role") == "assistant"]
        if not replies:
            raise ValueError(
                f"GuessNumberEnvironment: conversation {index} has no assistant message; step "
                "the environment after each generation turn"
            )
        turns = len(replies)
        guess = parse_guess(str(replies[-1].get("content", "")))
        if guess == target:
            reward = max(0.0, 1.0 - self.turn_penalty * (turns - 1))
            return reward, None, True, turns, True
        if turns >= self.max_turns:
            return 0.0, None, True, turns, False
        if guess is None:
            text = "Please answer with one whole number."
        elif guess < target:
            text = f"higher: the number is greater than {guess}"
        else:
            text = f"lower: the number is less than {guess}"
        return 0.0, {"role": "user", "content": text}, False, turns, False

    def step(self, messages: list[list[Message]], metadata: list[dict[str, Any]]) -> RewardEnvStep:
        """Judge each conversation's latest guess; continue the unsolved ones."""
        if len(messages) != len(metadata):
            raise ValueError(
                f"GuessNumberEnvironment.step got {len(messages)} conversations but "
                f"{len(metadata)} metadata rows; pass one row per conversation"
            )
        rewards, observations, done, out_metadata = [], [], [], []
        for i, (conversation, raw_row) in enumerate(zip(messages, metadata, strict=True)):
            row = dict(raw_row or {})
            reward, observation, finished, turns, solved = self._score(conversation, row, i)
            rewards.append(reward)
            observations.append(observation)
            done.append(finished)
            out_metadata.append({**row, "turns": turns, "solved": solved})
        solved_count = sum(1 for m in out_metadata if m["solved"])
        return RewardEnvStep(
            rewards={"guess_number": torch.tensor(rewards, dtype=torch.float32)},
            observations=observations,
            done=done,
            metadata=out_metadata,
            metrics={"solved": float(solved_count)},
        )
