"""dpo_loss, summed_response_logprobs and DPOLoss against hand-computed values."""

from __future__ import annotations

import math
import pickle

import pytest
import torch
from nemo_rl.algorithms.dpo import DPOLoss, dpo_loss, summed_response_logprobs


def _neg_logsigmoid(x: float) -> float:
    return math.log1p(math.exp(-x))


def test_summed_response_logprobs_sum_and_mean() -> None:
    # row 0: -1 - 2 = -3, mean -1.5; row 1: -4 (the -inf is masked), mean -4; row 2: empty -> 0
    lp = torch.tensor([[0.0, -1.0, -2.0], [0.0, -4.0, float("-inf")], [-9.0, -9.0, -9.0]])
    mask = torch.tensor([[0, 1, 1], [0, 1, 0], [0, 0, 0]])
    assert summed_response_logprobs(lp, mask).tolist() == [-3.0, -4.0, 0.0]
    assert summed_response_logprobs(lp, mask, average=True).tolist() == [-1.5, -4.0, 0.0]
    with pytest.raises(ValueError, match="same shape"):
        summed_response_logprobs(lp, mask[:, :2])


def test_dpo_loss_by_hand() -> None:
    # pair 0: (pc - rc) - (pr - rr) = (-1 + 2) - (-3 + 2) = 2, beta 0.5 -> -log sigmoid(1) = 0.313262
    # pair 1: (-2 + 2) - (-1 + 2) = -1 -> -log sigmoid(-0.5) = 0.974077; mean 0.643669
    loss = dpo_loss(
        torch.tensor([-1.0, -2.0]),
        torch.tensor([-3.0, -1.0]),
        torch.tensor([-2.0, -2.0]),
        torch.tensor([-2.0, -2.0]),
        beta=0.5,
    )
    assert loss.item() == pytest.approx((_neg_logsigmoid(1.0) + _neg_logsigmoid(-0.5)) / 2)
    assert loss.item() == pytest.approx(0.643669, abs=1e-6)


# Two pairs, rows (chosen, rejected, chosen, rejected); response tokens 1 and 2.
#   policy sums: row 0: -1 - 1 = -2; row 1: -4; row 2: -4; row 3: -1 - 0.5 = -1.5
#   reference sums: -3 on every row.
#   rewards beta (policy - ref), beta 0.5: 0.5, -0.5, -0.5, 0.75
#   pair 0: chosen 0.5 - rejected -0.5 = 1 -> -log sigmoid(1) = 0.313262, correct
#   pair 1: -0.5 - 0.75 = -1.25 -> -log sigmoid(-1.25) = 1.501929, wrong
POLICY = [[0.0, -1.0, -1.0], [0.0, -2.0, -2.0], [0.0, -3.0, -1.0], [0.0, -1.0, -0.5]]
MASK = [[0, 1, 1]] * 4


def _batch(sample_mask=(1.0, 1.0, 1.0, 1.0)) -> dict:
    return {
        "reference_logprobs": torch.tensor([[0.0, -1.5, -1.5]] * 4),
        "token_mask": torch.tensor(MASK),
        "sample_mask": torch.tensor(sample_mask),
    }


def _floats(metrics: dict) -> dict[str, float]:
    """The loss's metrics as floats, after checking they are detached 0-dim tensors (the backend
    reads them to the host once per update, not once per micro-batch)."""
    for name, value in metrics.items():
        assert isinstance(value, torch.Tensor) and value.dim() == 0, name
        assert not value.requires_grad, name
    return {name: float(value) for name, value in metrics.items()}


def _run(loss_fn, policy, batch, seqs):
    lp = torch.tensor(policy, requires_grad=True)
    loss, metrics = loss_fn(lp, batch, 8, seqs)
    loss.backward()
    return loss.item(), _floats(metrics), lp.grad


def test_dpo_loss_over_interleaved_pairs() -> None:
    # 4 sequences -> 2 pairs: preference = (0.313262 + 1.501929) / 2 = 0.907595;
    # accuracy 1/2; margin (1 - 1.25) / 2 = -0.125; chosen (0.5 - 0.5) / 2 = 0;
    # rejected (-0.5 + 0.75) / 2 = 0.125
    loss, metrics, grad = _run(DPOLoss(beta=0.5), POLICY, _batch(), seqs=4)
    preference = (_neg_logsigmoid(1.0) + _neg_logsigmoid(-1.25)) / 2
    assert loss == pytest.approx(preference)
    assert metrics["preference_loss"] == pytest.approx(0.907595, abs=1e-6)
    assert metrics["accuracy"] == pytest.approx(0.5)
    assert metrics["reward_margin"] == pytest.approx(-0.125)
    assert metrics["chosen_reward"] == pytest.approx(0.0)
    assert metrics["rejected_reward"] == pytest.approx(0.125)
    # d/d(chosen token) of -log sigmoid(z) with z = beta (sum_c - sum_r - ...): -sigmoid(-z) beta;
    # pair 0, z = 1: -0.268941 * 0.5 / 2 pairs = -0.067235; the rejected tokens get +0.067235.
    g = (1 / (1 + math.e)) * 0.5 / 2
    torch.testing.assert_close(grad[0], torch.tensor([0.0, -g, -g]))
    torch.testing.assert_close(grad[1], torch.tensor([0.0, g, g]))


def test_sft_term_is_the_chosen_nll_per_pair() -> None:
    # chosen NLLs: 2 (row 0) and 4 (row 2) -> (2 + 4) / 2 pairs = 3; loss = 0.907595 + 0.1 * 3.
    loss_fn = DPOLoss(beta=0.5, sft_loss_weight=0.1)
    loss, metrics, _ = _run(loss_fn, POLICY, _batch(), seqs=4)
    assert metrics["sft_loss"] == pytest.approx(3.0)
    assert loss == pytest.approx(0.907595 + 0.3, abs=1e-6)
    # averaged per token: 2 / 2 = 1 and 4 / 2 = 2 -> 1.5; preference weight 0 leaves only it.
    loss_fn = DPOLoss(
        beta=0.5, preference_loss_weight=0.0, sft_loss_weight=1.0, sft_average_log_probs=True
    )
    loss, metrics, grad = _run(loss_fn, POLICY, _batch(), seqs=4)
    assert loss == pytest.approx(1.5) and metrics["sft_loss"] == pytest.approx(1.5)
    # d/dlogp of -mean over 2 tokens / 2 pairs = -0.25 on chosen tokens; rejected rows untouched.
    torch.testing.assert_close(grad[0], torch.tensor([0.0, -0.25, -0.25]))
    assert grad[1].abs().max().item() == 0.0


def test_averaged_preference_log_probs() -> None:
    # per-token means: -1, -2, -2, -0.75 vs reference -1.5 -> rewards 0.25, -0.25, -0.25, 0.375
    # pair 0: z = 0.5 -> 0.474077; pair 1: z = -0.625 -> 1.053701; mean 0.763889
    loss_fn = DPOLoss(beta=0.5, preference_average_log_probs=True)
    loss, metrics, _ = _run(loss_fn, POLICY, _batch(), seqs=4)
    assert loss == pytest.approx(0.763889, abs=1e-6)
    assert metrics["reward_margin"] == pytest.approx((0.5 - 0.625) / 2)


def test_micro_batches_of_one_pair_sum_to_the_full_batch() -> None:
    loss_fn = DPOLoss(beta=0.5, sft_loss_weight=0.1)
    full = _run(loss_fn, POLICY, _batch(), seqs=4)
    parts = [
        _run(loss_fn, POLICY[i : i + 2], {k: v[i : i + 2] for k, v in _batch().items()}, seqs=4)
        for i in (0, 2)
    ]
    assert parts[0][0] + parts[1][0] == pytest.approx(full[0])
    for name, value in full[1].items():
        assert parts[0][1][name] + parts[1][1][name] == pytest.approx(value, abs=1e-6), name


def test_masked_pair_is_ignored_even_with_garbage_logprobs() -> None:
    # Pair 1 masked (sample_mask 0 on both rows, -inf log-probs): only pair 0 counts, over
    # global_valid_seqs 2 -> 1 pair: 0.313262.
    policy = POLICY[:2] + [[float("-inf")] * 3] * 2
    loss, metrics, grad = _run(DPOLoss(beta=0.5), policy, _batch((1.0, 1.0, 0.0, 0.0)), seqs=2)
    assert loss == pytest.approx(_neg_logsigmoid(1.0))
    assert metrics["accuracy"] == 1.0
    assert torch.isfinite(grad).all()


def test_picklable() -> None:
    loss_fn = pickle.loads(pickle.dumps(DPOLoss(beta=0.5, sft_loss_weight=0.1)))
    assert loss_fn.beta == 0.5 and loss_fn.sft_loss_weight == 0.1


def test_bad_inputs_raise_one_clear_error() -> None:
    loss_fn = DPOLoss(beta=0.5)
    lp = torch.tensor(POLICY)
    with pytest.raises(ValueError, match="B even"):
        loss_fn(lp[:3], {k: v[:3] for k, v in _batch().items()}, 6, 3)
    with pytest.raises(ValueError, match="pair 1 has sample_mask 1 on its chosen row and 0"):
        loss_fn(lp, _batch((1.0, 1.0, 1.0, 0.0)), 8, 4)
    with pytest.raises(ValueError, match="must be even"):
        loss_fn(lp, _batch(), 8, 5)
    with pytest.raises(ValueError, match="counts fewer pairs"):
        loss_fn(lp, _batch(), 8, 2)
    with pytest.raises(KeyError, match=r"batch\['reference_logprobs'\]"):
        loss_fn(lp, {k: v for k, v in _batch().items() if k != "reference_logprobs"}, 8, 4)
    with pytest.raises(ValueError, match="beta must be positive"):
        DPOLoss(beta=0.0)
    with pytest.raises(ValueError, match="weights must be >= 0"):
        DPOLoss(beta=0.1, sft_loss_weight=-1.0)
