"""GRPOTrainer: one GRPO step is rollout -> rewards -> advantages -> log-probs -> policy update.

Everything else (the loop, validation cadence, checkpoints, logging) is `BaseTrainer`'s.

Example:
    >>> import nemo_rl
    >>> trainer = nemo_rl.GRPOTrainer.from_pretrained("/models/tiny", num_prompts_per_step=8)  # doctest: +SKIP
    >>> trainer.fit(dataset="train.jsonl", reward_fn=lambda prompt, response, answer, **_: float(answer in response))  # doctest: +SKIP
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from typing import Any

import torch

from nemo_rl import registry
from nemo_rl.algorithms.grpo.config import GRPOConfig
from nemo_rl.algorithms.grpo.data import GRPOPromptTransform
from nemo_rl.algorithms.grpo.estimators import AdvantageInputs
from nemo_rl.algorithms.grpo.policy_losses import build_policy_loss, reuses_training_logprobs
from nemo_rl.algorithms.grpo.prompt_limits import prompt_limit
from nemo_rl.algorithms.grpo.rewards import dynamic_sampling_keep_mask, shape_rewards
from nemo_rl.data import BatchedDataDict
from nemo_rl.environments.pool import EnvironmentPool
from nemo_rl.infra.resources import ResourceManager
from nemo_rl.rollout import RolloutEngine, rollout_metrics
from nemo_rl.trainers.base import BaseTrainer
from nemo_rl.trainers.callbacks import Callback
from nemo_rl.trainers.result import FitResult

TRAIN_KEYS = (
    "input_ids", "input_lengths", "token_mask", "sample_mask", "advantages",
    "generation_logprobs", "prev_logprobs", "reference_logprobs",
)


class GRPOTrainer(BaseTrainer):
    """Group Relative Policy Optimization (and DAPO, Dr.GRPO, GSPO, CISPO through `loss`)."""

    config_class = GRPOConfig
    config: GRPOConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reward_fn: Any = None
        self._env_time = 0.0  # seconds in the environment pool during this step's rollouts
        self._prompt_counts = {"data/prompts_filtered": 0.0, "data/prompts_truncated": 0.0}

    @property
    def rows_per_step(self) -> int:
        return self.config.num_prompts_per_step

    rows_per_step_field = "num_prompts_per_step"

    @property
    def sequences_per_step(self) -> int:
        return self.config.sequences_per_step * self.config.epochs_per_rollout

    def describe_batches(self) -> list[str]:
        c = self.config
        return [
            f"{c.num_prompts_per_step} prompts/step x {c.num_generations_per_prompt} generations/prompt"
            f" = {c.sequences_per_step} sequences/step",
            *super().describe_batches(),
        ]

    def fit(
        self,
        dataset: Any = None,
        reward_fn: Any = None,
        val_dataset: Any = None,
        callbacks: Sequence[Callback] | None = None,
    ) -> FitResult:
        """Train on `dataset` with `reward_fn` (a callable, a list/dict of them, or an Environment;
        None uses the config's `environment`)."""
        from nemo_rl.environments.callable_reward import check_reward

        check_reward(reward_fn, on_error=self.config.on_reward_error)  # before any model loads
        self.reward_fn = reward_fn
        return super().fit(dataset, val_dataset, callbacks)

    # ----------------------------------------------------------------------------- setup
    def build_transform(self) -> GRPOPromptTransform:
        cfg = self.config
        limit = prompt_limit(cfg.policy.max_total_sequence_length, cfg.data.max_input_seq_length)
        return GRPOPromptTransform(
            self.tokenizer, cfg.data, max_prompt_len=limit, overlong_prompts=cfg.overlong_prompts
        )

    def plugin_summary(self) -> list[str]:
        cfg = self.config
        generation = registry.resolve("generation_backends", cfg.generation.backend)
        lines = [*super().plugin_summary(), f"generation backend: {cfg.generation.backend} ({generation.__module__})"]
        if cfg.environment:
            registry.resolve("environments", cfg.environment)
            lines.append(f"environment: {cfg.environment}")
        registry.resolve("advantage_estimators", cfg.advantage_estimator)
        lines.append(f"advantage estimator: {cfg.advantage_estimator}")
        registry.resolve("policy_losses", cfg.loss.name)
        lines.append(f"policy loss: {cfg.loss.name}")
        return lines

    def setup_algorithm(self) -> None:
        from nemo_rl.environments import as_environment

        cfg = self.config
        if self.reward_fn is None and cfg.environment is None:
            raise ValueError(
                "GRPO needs a reward: pass fit(reward_fn=...) (any callable "
                "reward_fn(prompt, response, **row) -> float) or set `environment` in the config "
                "(e.g. environment: math, with nemo-rl-envs installed)"
            )
        policy = {"on_error": cfg.on_reward_error, "timeout_s": cfg.reward_timeout_s}
        if self.reward_fn is not None:
            self.environment = as_environment(self.reward_fn, **policy)
        else:
            self.environment = as_environment(
                cfg.environment, environment_options=cfg.environment_options, **policy
            )
        self.advantage_estimator = registry.resolve("advantage_estimators", cfg.advantage_estimator)
        gen_cfg = cfg.generation.model_copy(update={"model_name": cfg.generation.model_name or cfg.policy.model_name})
        self.generation = registry.resolve("generation_backends", gen_cfg.backend)()
        self.generation.setup(gen_cfg, self.cluster)
        # Infra decides colocation: memory hand-over, weight refit, or one shared module.
        self.resources = ResourceManager(cfg.cluster, gen_cfg)
        self.resources.attach(self.cluster, self.policy, self.generation)
        self.env_pool = EnvironmentPool(self.environment, **cfg.environment_pool.model_dump())
        self.rollouts = RolloutEngine(
            self.generation, self.env_pool, self.tokenizer,
            max_turns=cfg.max_rollout_turns, max_total_length=cfg.policy.max_total_sequence_length,
        )
        self.loss_fn = build_policy_loss(cfg.loss)
        # Whether steps skip the prev_logprobs pass: decided once, by the config and the loss.
        self.reuse_training_logprobs = reuses_training_logprobs(cfg, self.loss_fn)

    def load_checkpoint(self, path: Any) -> None:
        super().load_checkpoint(path)
        self.resources.mark_stale()

    # ------------------------------------------------------------------------------ step
    def training_step(self, rows: list[dict[str, Any]]) -> dict[str, float]:
        cfg = self.config
        started = time.perf_counter()
        self._env_time = 0.0
        self._prompt_counts = dict.fromkeys(self._prompt_counts, 0.0)
        with self.phase("rollout"):
            batch, components, rounds = self._collect_rollouts(rows)
        metrics: dict[str, float] = {
            "time/rollout_s": time.perf_counter() - started, "time/environment_s": self._env_time,
            **self._prompt_counts,
            **self.resources.pop_timings(),  # colocated hand-over: offload, wake, refit, sleep, onload
        }
        rewards, penalty = shape_rewards(
            batch["rewards"], batch["response_lengths"], cfg.reward_shaping, cfg.reward_scaling,
            cfg.generation.max_new_tokens,
        )
        if penalty is not None:
            components["overlong_penalty"] = penalty
        sample_mask = batch["sample_mask"].clone()  # 0 for prompts the transform rejected
        if cfg.overlong_filtering:
            sample_mask[batch["truncated"]] = 0.0
        batch["sample_mask"] = sample_mask
        batch["shaped_rewards"] = rewards
        batch["advantages"] = self.advantage_estimator(AdvantageInputs(
            rewards=rewards, group_ids=batch["group_ids"], valid=sample_mask > 0,
            token_mask=batch["token_mask"], config=cfg, components=components,
        ))
        metrics.update(rollout_metrics(batch, rewards, components))
        metrics["dynamic_sampling/rounds"] = float(rounds)
        self.callbacks.on_rollout_end(self, batch, metrics)

        started = time.perf_counter()
        train_batch = batch.select_keys([k for k in TRAIN_KEYS if k in batch])
        with self.phase("logprobs"):
            if not self.reuse_training_logprobs:  # else the loss uses the training forward's
                train_batch["prev_logprobs"] = self.policy.get_logprobs(train_batch)
            if cfg.loss.kl_penalty > 0:
                train_batch["reference_logprobs"] = self.policy.get_logprobs(train_batch, reference=True)
        with self.phase("train"):
            for _ in range(cfg.epochs_per_rollout):
                train_metrics = self.policy.train_step(train_batch, self.loss_fn)
        metrics.update(train_metrics)
        metrics["time/train_s"] = time.perf_counter() - started
        self.resources.mark_stale()  # pushed at the next rollout, once generation is awake
        return metrics

    def _collect_rollouts(
        self, rows: list[dict[str, Any]]
    ) -> tuple[BatchedDataDict, dict[str, torch.Tensor], int]:
        """Roll out `rows`; with dynamic sampling, keep only groups whose rewards differ and draw
        more prompts until the step is full (DAPO)."""
        cfg = self.config
        gens = cfg.num_generations_per_prompt
        kept: list[BatchedDataDict] = []
        kept_components: list[dict[str, torch.Tensor]] = []
        groups, rounds, offset = 0, 0, 0
        while True:
            sampling = cfg.generation.sampling_params(seed=self._sampling_seed(rounds))
            batch, components = self._rollout(rows, gens, sampling, offset)
            offset += len(rows)
            if not cfg.use_dynamic_sampling:
                return batch, components, rounds
            keep = dynamic_sampling_keep_mask(batch["rewards"], batch["group_ids"]).nonzero().flatten()
            kept.append(batch.select_indices(keep))
            kept_components.append({k: v[keep] for k, v in components.items()})
            groups += len(keep) // gens
            if groups >= cfg.num_prompts_per_step:
                break
            rounds += 1
            if rounds >= cfg.dynamic_sampling_max_gen_batches:
                raise RuntimeError(
                    f"dynamic sampling found only {groups} of {cfg.num_prompts_per_step} prompt "
                    f"groups with differing rewards after {rounds} extra generation rounds; every "
                    "other group was all-correct or all-wrong. Raise "
                    "dynamic_sampling_max_gen_batches, use easier/harder data, or turn off "
                    "use_dynamic_sampling"
                )
            rows = self.next_rows()
        merged = BatchedDataDict.from_batches(kept, pad_value_dict={"input_ids": self.rollouts.pad_id})
        n = cfg.sequences_per_step
        components = {k: torch.cat([c[k] for c in kept_components])[:n] for k in kept_components[0]}
        return merged.slice(0, n), components, rounds

    def _sampling_seed(self, round_index: int) -> int:
        """The sampling seed of one generation round: a function of (seed, step, round) only.

        Why: a backend's own RNG may live in another process (vLLM workers) or be forked per call,
        so the trainer's checkpoint cannot hold it. Seeding each round from the trainer state gives
        fresh samples every step and round, and an exact resume, with any backend.
        """
        return random.Random(f"{self.config.seed}/{self.state.step}/{round_index}").randrange(2**31)

    def _rollout(
        self, rows: list[dict[str, Any]], gens: int, sampling: Any, group_offset: int = 0
    ) -> tuple[BatchedDataDict, dict[str, torch.Tensor]]:
        prompts = self.transform(rows)
        self._prompt_counts["data/prompts_filtered"] += float(prompts["filtered"].sum())
        self._prompt_counts["data/prompts_truncated"] += float(prompts["truncated"].sum())
        prompts = prompts.select_keys(["input_ids", "input_lengths", "sample_mask", "filtered", "messages", "rows"])
        answer_key = self.config.data.answer_key
        if answer_key != "answer":  # rewards read `answer` whatever the dataset calls it
            prompts["rows"] = [{**r, "answer": r[answer_key]} if answer_key in r else r for r in prompts["rows"]]
        prompts = prompts.repeat_interleave(gens)
        env_busy = self.env_pool.busy_s
        with self.resources.generation_phase():
            batch, components = self.rollouts.run(prompts, sampling)
        self._env_time += self.env_pool.busy_s - env_busy
        batch["group_ids"] = torch.arange(len(rows)).repeat_interleave(gens) + group_offset
        return batch, components

    # --------------------------------------------------------------------- validation
    def validation_step(self, rows: list[dict[str, Any]]) -> dict[str, float]:
        """Greedy pass@1: one greedy response per prompt; a sample passes at reward >= 1."""
        self._prompt_counts = dict.fromkeys(self._prompt_counts, 0.0)
        batch, components = self._rollout(rows, 1, self.config.generation.sampling_params(temperature=0.0))
        rewards = batch["rewards"]
        metrics = {**rollout_metrics(batch, rewards, components), **self._prompt_counts}
        metrics["accuracy"] = float((rewards >= 1.0 - 1e-6).float().mean())
        return {k: v for k, v in metrics.items() if not k.startswith("advantages")}

    @property
    def shared_module(self) -> bool:
        """True when generation runs on the training module itself (decided by infra)."""
        return self.resources.shared_module

    def close(self) -> None:
        """Stop the environment pool's workers, then the cluster."""
        pool = getattr(self, "env_pool", None)
        if pool is not None:
            pool.close()
        super().close()
