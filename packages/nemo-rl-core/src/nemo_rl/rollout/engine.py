"""RolloutEngine: generation -> environment step -> observation appended -> ... until done.

The engine turns a batch of prompts into training sequences: prompt tokens, then for each turn the
generated tokens (trained on: token_mask 1, with their generation log-probs) and the environment's
observation tokens (not trained on: token_mask 0). Single-turn tasks are the one-turn case.

Example:
    >>> engine = RolloutEngine(generation, environment, tokenizer, max_turns=1)  # doctest: +SKIP
    >>> rollout, metrics = engine.run(prompts, sampling)  # doctest: +SKIP
    >>> rollout["token_mask"].shape == rollout["input_ids"].shape  # doctest: +SKIP
    True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from nemo_rl.config import SamplingParams
from nemo_rl.data import BatchedDataDict
from nemo_rl.protocols import Environment, EnvStep, GenerationBackend, Message, StreamingGeneration
from nemo_rl.rollout.streaming import StreamStats, score_while_streaming


@dataclass
class _RolloutState:
    """Per-sample state of one `RolloutEngine.run`: tokens, masks, conversation, rewards."""

    ids: list[list[int]]
    messages: list[list[Message]]
    mask: list[list[float]] = field(init=False)
    gen_lp: list[list[float]] = field(init=False)
    truncated: list[bool] = field(init=False)
    turns: list[int] = field(init=False)
    responses: list[str] = field(init=False)
    reward_errors: list[int] = field(init=False)  # failed reward calls scored 0, per sample
    total_reward: torch.Tensor = field(init=False)
    components: dict[str, torch.Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.ids)
        self.mask = [[0.0] * len(x) for x in self.ids]
        self.gen_lp = [[0.0] * len(x) for x in self.ids]
        self.truncated, self.turns, self.responses = [False] * n, [0] * n, [""] * n
        self.reward_errors = [0] * n
        self.total_reward = torch.zeros(n)


class RolloutEngine:
    """Drives multi-turn rollouts between a generation backend and an environment.

    `max_total_length` caps prompt plus all turns in tokens, for each sample on its own: a
    conversation that reaches it stops and is marked truncated, while the other samples keep
    their full `max_new_tokens`. Prompts flagged `filtered` are not rolled out at all.
    `streaming` (on by default) lets a `StreamingGeneration` backend hand over each sample as it
    finishes, to be scored while the others generate; `last_stream_stats` then holds what the
    last streamed turn did. Off, or with a backend without it, each turn is one `generate` call.
    """

    def __init__(
        self,
        generation: GenerationBackend,
        environment: Environment,
        tokenizer: Any,
        *,
        max_turns: int = 1,
        max_total_length: int | None = None,
        streaming: bool = True,
    ) -> None:
        self.generation = generation
        self.environment = environment
        self.tokenizer = tokenizer
        self.max_turns = max_turns
        self.max_total_length = max_total_length
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.streaming = streaming
        self.last_stream_stats: StreamStats | None = None

    def run(
        self, prompts: BatchedDataDict, sampling: SamplingParams
    ) -> tuple[BatchedDataDict, dict[str, torch.Tensor]]:
        """Roll out every prompt; returns the sequence batch and the reward components.

        `batch["rewards"]` is the total reward per sample (the EnvStep's own weights
        applied, summed over turns); the components are unweighted sums over turns, for logging.
        `batch["reward_errors"]` counts each sample's reward calls that failed and scored 0.

        `prompts` holds `input_ids`/`input_lengths` and the list keys `messages` (the prompt
        conversation) and `rows` (dataset rows, passed to the environment as metadata); an
        optional `filtered` [B] bool marks prompts to skip: no generation, no environment call,
        reward 0, sample_mask 0 (an over-long prompt, see `GRPOPromptTransform`).

        With a `StreamingGeneration` backend (and `streaming` on), each turn's samples are
        scored while the others still generate (`streaming.py`); the result is the same.
        """
        n = prompts.size
        state = _RolloutState(
            [prompts["input_ids"][i, : int(prompts["input_lengths"][i])].tolist() for i in range(n)],
            [list(m) for m in prompts["messages"]],
        )
        rows: list[dict[str, Any]] = list(prompts["rows"])
        filtered = prompts["filtered"].tolist() if "filtered" in prompts else [False] * n
        active = [i for i in range(n) if not filtered[i]]
        for turn in range(self.max_turns):
            # Each sample's room left, on its own: one long conversation must not shorten (or
            # cancel) the others' turns.
            budgets = {i: self._turn_budget(len(state.ids[i]), sampling) for i in active}
            for i in [i for i in active if budgets[i] <= 0]:
                state.truncated[i] = True
            active = [i for i in active if budgets[i] > 0]
            if not active:
                break
            turn_max = max(budgets[i] for i in active)
            # model_copy skips validation: keep the floor within this turn's (maybe smaller) cap.
            update: dict[str, Any] = {
                "max_new_tokens": turn_max, "min_new_tokens": min(sampling.min_new_tokens, turn_max)
            }
            if sampling.seed is not None:  # a seeded turn must not replay the previous turn's noise
                update["seed"] = sampling.seed + turn
            replies = self._generate_and_score(
                state, rows, active, budgets, sampling.model_copy(update=update)
            )
            still_active = []
            for i in active:
                done, observation = replies[i]
                if done or state.truncated[i] or observation is None:
                    continue
                obs_ids = self._observation_tokens(state.messages[i], observation)
                state.messages[i].append(observation)
                state.ids[i] += obs_ids
                state.mask[i] += [0.0] * len(obs_ids)
                state.gen_lp[i] += [0.0] * len(obs_ids)
                still_active.append(i)
            active = still_active
        batch = self._pad(state.ids)
        width = batch["input_ids"].shape[1]
        batch["token_mask"] = _pad_float(state.mask, width)
        batch["generation_logprobs"] = _pad_float(state.gen_lp, width)
        # Prompts the data transform rejected (e.g. too long) keep sample_mask 0: never trained on.
        batch["sample_mask"] = prompts["sample_mask"].float().clone() if "sample_mask" in prompts else torch.ones(n)
        batch["filtered"] = torch.tensor(filtered, dtype=torch.bool)
        batch["truncated"] = torch.tensor(state.truncated)
        batch["response_lengths"] = batch["token_mask"].sum(dim=1).long()
        batch["num_turns"] = torch.tensor(state.turns)
        batch["messages"] = state.messages
        batch["rows"] = rows
        batch["responses"] = state.responses
        batch["rewards"] = state.total_reward
        batch["reward_errors"] = torch.tensor(state.reward_errors, dtype=torch.float32)
        return batch, state.components

    def _generate_and_score(
        self,
        state: _RolloutState,
        rows: list[dict[str, Any]],
        active: list[int],
        budgets: dict[int, int],
        sampling: SamplingParams,
    ) -> dict[int, tuple[bool, Message | None]]:
        """One turn of the `active` samples: generate, append, score; each sample's (done,
        observation). Streamed when the backend can (see the class docstring)."""
        prompts = self._pad([state.ids[i] for i in active])
        replies: dict[int, tuple[bool, Message | None]] = {}
        # `score` and `apply` see rows of this turn's prompts (j); samples are active[j].

        def score(js: list[int]) -> EnvStep:
            return self.environment.step([state.messages[active[j]] for j in js], [rows[active[j]] for j in js])

        def apply(js: list[int], step: EnvStep) -> None:
            self._apply_env_step(state, [active[j] for j in js], step, replies)

        if self.streaming and isinstance(self.generation, StreamingGeneration):
            taken: set[int] = set()

            def take(j: int, out: BatchedDataDict) -> None:
                if j in taken or not 0 <= j < len(active):
                    raise RuntimeError(self._stream_error(f"row {j} twice or out of range"))
                taken.add(j)
                self._take_generation(state, active[j], out, 0, budgets[active[j]])

            stream = self.generation.generate_stream(prompts, sampling)
            self.last_stream_stats = score_while_streaming(stream, take, score, apply)
            missing = sorted(set(range(len(active))) - taken)
            if missing:
                raise RuntimeError(self._stream_error(f"no result for rows {missing}"))
        else:
            out = self.generation.generate(prompts, sampling)
            for j, i in enumerate(active):
                self._take_generation(state, i, out, j, budgets[i])
            everyone = list(range(len(active)))
            apply(everyone, score(everyone))
        return replies

    def _stream_error(self, what: str) -> str:
        return (
            f"{type(self.generation).__name__}.generate_stream yielded {what} of its prompts; a "
            "StreamingGeneration backend yields every row exactly once (fix the backend, or "
            "build the RolloutEngine with streaming=False to use its generate)"
        )

    def _take_generation(self, state: _RolloutState, i: int, out: BatchedDataDict, j: int, budget: int) -> None:
        """Append row `j` of a generation result to sample `i` (cut to the sample's `budget`)."""
        length = int(out["lengths"][j])
        cut = length > budget  # generated past its own room: keep what fits
        length = min(length, budget)
        tokens = out["output_ids"][j, :length].tolist()
        state.ids[i] += tokens
        state.mask[i] += [1.0] * length
        state.gen_lp[i] += out["logprobs"][j, :length].float().tolist()
        state.responses[i] = self.tokenizer.decode(tokens, skip_special_tokens=True)
        state.messages[i].append({"role": "assistant", "content": state.responses[i]})
        state.truncated[i] = cut or bool(out["truncated"][j])
        state.turns[i] += 1

    @staticmethod
    def _apply_env_step(
        state: _RolloutState,
        indices: list[int],
        step: EnvStep,
        replies: dict[int, tuple[bool, Message | None]],
    ) -> None:
        """Add the rewards of `step` (one entry per sample of `indices`) and record each sample's
        done flag and observation in `replies`."""
        index = torch.tensor(indices, dtype=torch.long)
        named = step.rewards if isinstance(step.rewards, dict) else {"reward": step.rewards}
        for name, values in named.items():
            total = state.components.setdefault(name, torch.zeros(len(state.ids)))
            total[index] += torch.as_tensor(values, dtype=torch.float32)
        state.total_reward[index] += step.total_reward().float()
        for j, i in enumerate(indices):
            meta = step.metadata[j] if step.metadata and j < len(step.metadata) else None
            if isinstance(meta, dict):
                state.reward_errors[i] += len(meta.get("reward_errors", ()))
            observation = step.observations[j] if j < len(step.observations) else None
            replies[i] = (bool(step.done[j]), observation)

    def _turn_budget(self, length: int, sampling: SamplingParams) -> int:
        """New tokens one sample of `length` tokens may generate this turn."""
        if self.max_total_length is None:
            return sampling.max_new_tokens
        return min(sampling.max_new_tokens, self.max_total_length - length)

    def _pad(self, sequences: list[list[int]]) -> BatchedDataDict:
        width = max(len(s) for s in sequences)
        input_ids = torch.full((len(sequences), width), self.pad_id, dtype=torch.long)
        for i, s in enumerate(sequences):
            input_ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
        return BatchedDataDict(input_ids=input_ids, input_lengths=lengths)

    def _observation_tokens(self, history: list[Message], observation: Message) -> list[int]:
        """Tokens the chat template adds for `observation` plus the next generation prompt.

        Rendering the conversation with and without the observation and taking the difference
        keeps the template's own turn markers, whatever the model family.
        """
        before = self._render(history, add_generation_prompt=False)
        after = self._render([*history, observation], add_generation_prompt=True)
        if after.startswith(before):
            text = after[len(before) :]
        else:  # a template that rewrites earlier turns: fall back to the observation alone
            text = str(observation.get("content", ""))
        return self.tokenizer.encode(text, add_special_tokens=False)

    def _render(self, messages: list[Message], add_generation_prompt: bool) -> str:
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=add_generation_prompt
            )
        return "".join(str(m.get("content", "")) for m in messages)


def _pad_float(rows: list[list[float]], width: int) -> torch.Tensor:
    out = torch.zeros(len(rows), width)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r, dtype=torch.float32)
    return out
