"""NLLLoss against hand-computed values."""

from __future__ import annotations

import pickle

import pytest
import torch
from nemo_rl.algorithms.sft import NLLLoss

INF = float("-inf")
# Row 0: response tokens 1..3 with log-probs -1, -2, -0.5; row 1: one response token, -3, then
# padding holding -inf.
LOGP = [[0.0, -1.0, -2.0, -0.5], [0.0, -3.0, INF, INF]]
MASK = [[0, 1, 1, 1], [0, 1, 0, 0]]


def _floats(metrics: dict) -> dict[str, float]:
    """The loss's metrics as floats, after checking they are detached 0-dim tensors (the backend
    reads them to the host once per update, not once per micro-batch)."""
    for name, value in metrics.items():
        assert isinstance(value, torch.Tensor) and value.dim() == 0, name
        assert not value.requires_grad, name
    return {name: float(value) for name, value in metrics.items()}


def _run(logp, token_mask, sample_mask, tokens):
    lp = torch.tensor(logp, requires_grad=True)
    batch = {"token_mask": torch.tensor(token_mask), "sample_mask": torch.tensor(sample_mask)}
    loss, metrics = NLLLoss()(lp, batch, tokens, len(sample_mask))
    loss.backward()
    return loss.item(), _floats(metrics), lp.grad


def test_nll_is_the_masked_sum_over_the_global_token_count() -> None:
    # -(-1 - 2 - 0.5 - 3) / 4 = 6.5 / 4 = 1.625; d/dlogp = -1/4 on each valid token, 0 elsewhere
    # (and no NaN from the -inf padding).
    loss, metrics, grad = _run(LOGP, MASK, [1, 1], tokens=4)
    assert loss == pytest.approx(1.625)
    assert metrics == {"loss": pytest.approx(1.625), "num_valid_tokens": 4.0}
    expected = torch.tensor([[0.0, -0.25, -0.25, -0.25], [0.0, -0.25, 0.0, 0.0]])
    torch.testing.assert_close(grad, expected)


def test_sample_mask_drops_a_sequence() -> None:
    # Row 1 masked: 3.5 / 3 tokens = 1.166667
    loss, metrics, grad = _run(LOGP, MASK, [1, 0], tokens=3)
    assert loss == pytest.approx(3.5 / 3)
    assert metrics["num_valid_tokens"] == 3.0
    assert grad[1].abs().max().item() == 0.0


def test_micro_batches_sum_to_the_full_batch() -> None:
    # Row 0 alone: 3.5 / 4 = 0.875; row 1 alone: 3 / 4 = 0.75; sum 1.625, token counts 3 + 1.
    first = _run(LOGP[:1], MASK[:1], [1], tokens=4)
    second = _run(LOGP[1:], MASK[1:], [1], tokens=4)
    assert first[0] == pytest.approx(0.875) and second[0] == pytest.approx(0.75)
    assert first[1]["num_valid_tokens"] + second[1]["num_valid_tokens"] == 4.0


def test_empty_batch_gives_zero() -> None:
    loss, metrics, _ = _run([[0.0, -1.0]], [[0, 0]], [1], tokens=0)
    assert loss == 0.0 and metrics["num_valid_tokens"] == 0.0


def test_picklable() -> None:
    assert isinstance(pickle.loads(pickle.dumps(NLLLoss())), NLLLoss)


def test_bad_inputs_raise_one_clear_error() -> None:
    lp = torch.tensor(LOGP)
    batch = {"token_mask": torch.tensor(MASK), "sample_mask": torch.ones(2)}
    with pytest.raises(KeyError, match=r"batch\['sample_mask'\]"):
        NLLLoss()(lp, {"token_mask": batch["token_mask"]}, 4, 2)
    with pytest.raises(ValueError, match=r"shape \(2, 4\)"):
        NLLLoss()(lp, {**batch, "token_mask": torch.ones(2, 3)}, 4, 2)
    with pytest.raises(ValueError, match="global_valid_tokens \\(3\\) is smaller"):
        NLLLoss()(lp, batch, 3, 2)
    with pytest.raises(ValueError, match="logprobs must be \\[B, T\\]"):
        NLLLoss()(lp[0], batch, 4, 2)
