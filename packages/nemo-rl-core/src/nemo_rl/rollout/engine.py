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

from typing import Any

import torch

from nemo_rl.config import SamplingParams
from nemo_rl.data import BatchedDataDict
from nemo_rl.protocols import Environment, GenerationBackend, Message


class RolloutEngine:
    """Drives multi-turn rollouts between a generation backend and an environment.

    `max_total_length` caps prompt plus all turns in tokens, for each sample on its own: a
    conversation that reaches it stops and is marked truncated, while the other samples keep
    their full `max_new_tokens`. Prompts flagged `filtered` are not rolled out at all.
    """

    def __init__(
        self,
        generation: GenerationBackend,
        environment: Environment,
        tokenizer: Any,
        *,
        max_turns: int = 1,
        max_total_length: int | None = None,
    ) -> None:
        self.generation = generation
        self.environment = environment
        self.tokenizer = tokenizer
        self.max_turns = max_turns
        self.max_total_length = max_total_length
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

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
        """
        n = prompts.size
        ids: list[list[int]] = [
            prompts["input_ids"][i, : int(prompts["input_lengths"][i])].tolist() for i in range(n)
        ]
        mask: list[list[float]] = [[0.0] * len(x) for x in ids]
        gen_lp: list[list[float]] = [[0.0] * len(x) for x in ids]
        messages: list[list[Message]] = [list(m) for m in prompts["messages"]]
        rows: list[dict[str, Any]] = list(prompts["rows"])
        truncated = [False] * n
        turns = [0] * n
        responses = [""] * n
        reward_errors = [0] * n  # failed reward calls scored 0 (on_reward_error="zero"), per sample
        components: dict[str, torch.Tensor] = {}
        total_reward = torch.zeros(n)
        filtered = prompts["filtered"].tolist() if "filtered" in prompts else [False] * n
        active = [i for i in range(n) if not filtered[i]]
        for turn in range(self.max_turns):
            # Each sample's room left, on its own: one long conversation must not shorten (or
            # cancel) the others' turns.
            budgets = {i: self._turn_budget(len(ids[i]), sampling) for i in active}
            for i in [i for i in active if budgets[i] <= 0]:
                truncated[i] = True
            active = [i for i in active if budgets[i] > 0]
            if not active:
                break
            update: dict[str, Any] = {"max_new_tokens": max(budgets[i] for i in active)}
            if sampling.seed is not None:  # a seeded turn must not replay the previous turn's noise
                update["seed"] = sampling.seed + turn
            out = self.generation.generate(self._pad([ids[i] for i in active]), sampling.model_copy(update=update))
            for j, i in enumerate(active):
                length = int(out["lengths"][j])
                cut = length > budgets[i]  # generated past its own room: keep what fits
                length = min(length, budgets[i])
                tokens = out["output_ids"][j, :length].tolist()
                ids[i] += tokens
                mask[i] += [1.0] * length
                gen_lp[i] += out["logprobs"][j, :length].float().tolist()
                responses[i] = self.tokenizer.decode(tokens, skip_special_tokens=True)
                messages[i].append({"role": "assistant", "content": responses[i]})
                truncated[i] = cut or bool(out["truncated"][j])
                turns[i] += 1
            step = self.environment.step([messages[i] for i in active], [rows[i] for i in active])
            self._accumulate(components, step.rewards, active, n)
            total_reward[torch.tensor(active, dtype=torch.long)] += step.total_reward().float()
            for j, i in enumerate(active):
                meta = step.metadata[j] if step.metadata and j < len(step.metadata) else None
                if isinstance(meta, dict):
                    reward_errors[i] += len(meta.get("reward_errors", ()))
            still_active = []
            for j, i in enumerate(active):
                observation = step.observations[j] if j < len(step.observations) else None
                if step.done[j] or truncated[i] or observation is None:
                    continue
                obs_ids = self._observation_tokens(messages[i], observation)
                messages[i].append(observation)
                ids[i] += obs_ids
                mask[i] += [0.0] * len(obs_ids)
                gen_lp[i] += [0.0] * len(obs_ids)
                still_active.append(i)
            active = still_active
        batch = self._pad(ids)
        width = batch["input_ids"].shape[1]
        batch["token_mask"] = _pad_float(mask, width)
        batch["generation_logprobs"] = _pad_float(gen_lp, width)
        # Prompts the data transform rejected (e.g. too long) keep sample_mask 0: never trained on.
        batch["sample_mask"] = prompts["sample_mask"].float().clone() if "sample_mask" in prompts else torch.ones(n)
        batch["filtered"] = torch.tensor(filtered, dtype=torch.bool)
        batch["truncated"] = torch.tensor(truncated)
        batch["response_lengths"] = batch["token_mask"].sum(dim=1).long()
        batch["num_turns"] = torch.tensor(turns)
        batch["messages"] = messages
        batch["rows"] = rows
        batch["responses"] = responses
        batch["rewards"] = total_reward
        batch["reward_errors"] = torch.tensor(reward_errors, dtype=torch.float32)
        return batch, components

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

    @staticmethod
    def _accumulate(
        components: dict[str, torch.Tensor],
        rewards: torch.Tensor | dict[str, torch.Tensor],
        active: list[int],
        n: int,
    ) -> None:
        named = rewards if isinstance(rewards, dict) else {"reward": rewards}
        for name, values in named.items():
            total = components.setdefault(name, torch.zeros(n))
            total[torch.tensor(active, dtype=torch.long)] += torch.as_tensor(values, dtype=torch.float32)


def _pad_float(rows: list[list[float]], width: int) -> torch.Tensor:
    out = torch.zeros(len(rows), width)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r, dtype=torch.float32)
    return out
