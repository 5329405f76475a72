"""Advantage estimators (RLOO, REINFORCE++) against per-sample references, and the registry."""

from __future__ import annotations

import random

import pytest
import torch
from nemo_rl import registry
from nemo_rl.algorithms.grpo import GRPOConfig
from nemo_rl.algorithms.grpo.estimators import (
    AdvantageInputs,
    reinforce_plus_plus_advantages,
    rloo_advantages,
)


def _random_inputs(rng: random.Random, **config) -> AdvantageInputs:
    groups, rewards, valid, lengths = [], [], [], []
    for gid in rng.sample(range(100), rng.randint(1, 6)):
        for _ in range(rng.randint(1, 9)):
            groups.append(gid)
            rewards.append(rng.choice([0.0, 1.0, 0.3, rng.gauss(0, 2)]))
            valid.append(rng.random() > 0.2)
            lengths.append(rng.randint(0, 6))
    width = max(lengths) + 1
    mask = torch.tensor([[1.0 if t < n else 0.0 for t in range(width)] for n in lengths])
    return AdvantageInputs(
        rewards=torch.tensor(rewards, dtype=torch.float64), group_ids=torch.tensor(groups),
        valid=torch.tensor(valid), token_mask=mask, config=GRPOConfig(**config),
    )


def test_rloo_is_reward_minus_the_mean_of_the_other_valid_samples():
    rng = random.Random(0)
    for _ in range(300):
        x = _random_inputs(rng)
        got = rloo_advantages(x)
        for i in range(len(x.rewards)):
            peers = [j for j in range(len(x.rewards))
                     if j != i and x.valid[j] and x.group_ids[j] == x.group_ids[i]]
            want = 0.0 if not x.valid[i] or not peers else float(
                x.rewards[i] - sum(x.rewards[j] for j in peers) / len(peers))
            assert got[i].item() == pytest.approx(want, abs=1e-9)


@pytest.mark.parametrize("minus_baseline", [True, False])
def test_reinforce_plus_plus_whitens_over_valid_tokens(minus_baseline):
    rng = random.Random(1)
    for _ in range(300):
        x = _random_inputs(rng, minus_baseline=minus_baseline)
        got = reinforce_plus_plus_advantages(x)
        # Per-token reference: the centred reward repeated on each valid response token.
        values, cells = [], []
        for i in range(len(x.rewards)):
            r = float(x.rewards[i])
            if minus_baseline:
                members = [j for j in range(len(x.rewards))
                           if x.valid[j] and x.group_ids[j] == x.group_ids[i]]
                r -= sum(float(x.rewards[j]) for j in members) / max(1, len(members))
            for t in range(x.token_mask.shape[1]):
                if x.valid[i] and x.token_mask[i, t] > 0:
                    values.append(r)
                    cells.append((i, t))
        expected = torch.zeros_like(got)
        if values:
            mean = sum(values) / len(values)
            var = max(sum((v - mean) ** 2 for v in values) / len(values), 1e-8)
            for v, (i, t) in zip(values, cells, strict=True):
                expected[i, t] = (v - mean) / var**0.5
        torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-9)


def test_estimators_are_resolved_by_name_and_a_plugin_can_add_one():
    assert registry.resolve("advantage_estimators", "rloo") is rloo_advantages

    @registry.register("advantage_estimators", "sign")
    def sign_advantages(inputs: AdvantageInputs) -> torch.Tensor:
        return torch.sign(inputs.rewards - 0.5)

    try:
        assert registry.resolve("advantage_estimators", "sign") is sign_advantages
        with pytest.raises(registry.PluginNotFoundError, match="rloo"):
            registry.resolve("advantage_estimators", "rlo")
    finally:
        registry.unregister("advantage_estimators", "sign")


def test_the_dry_run_checks_the_estimator_name():
    from nemo_rl.config import load_config
    from nemo_rl.trainers.preflight import check_plugin, required_plugins

    config = load_config({"algorithm": "grpo", "advantage_estimator": "rlo"})
    assert ("advantage_estimators", "rlo", "advantage_estimator") in required_plugins(config)
    assert "did you mean 'rloo'" in check_plugin("advantage_estimators", "rlo", "advantage_estimator")
