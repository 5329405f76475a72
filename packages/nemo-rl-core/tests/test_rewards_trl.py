"""TRL-style reward functions (`fn(completions, **kwargs) -> list[float]`) work as TRL calls them,
with the same scores as the per-sample form, or are refused when the reward is built."""

from __future__ import annotations

import pytest
from nemo_rl.environments import RewardEnvironment, describe_reward_fn


def _batch(answers: list[str], responses: list[str]):
    messages = [
        [{"role": "user", "content": f"question {i}"}, {"role": "assistant", "content": r}]
        for i, r in enumerate(responses)
    ]
    rows = [{"answer": a, "level": i} for i, a in enumerate(answers)]
    return messages, rows


def per_sample(prompt, response, answer):
    return float(response.strip() == answer) + 0.1 * len(prompt)


def trl_kwargs_only(completions, **kwargs):
    return [float(c.strip() == a) + 0.1 * len(p)
            for c, a, p in zip(completions, kwargs["answer"], kwargs["prompts"], strict=True)]


def trl_named_columns(prompts, completions, answer, **kwargs):
    return [float(c.strip() == a) + 0.1 * len(p) for p, c, a in zip(prompts, completions, answer, strict=True)]


@pytest.mark.parametrize("fn", [trl_kwargs_only, trl_named_columns])
def test_trl_reward_scores_like_the_per_sample_reward(fn):
    messages, rows = _batch(["4", "6", "8"], ["4", " 5", "8 "])
    expected = RewardEnvironment(per_sample).step(messages, rows).rewards["per_sample"].tolist()
    got = RewardEnvironment(fn).step(messages, rows).rewards[fn.__name__].tolist()
    assert got == pytest.approx(expected)
    assert got == pytest.approx([1.0 + 1.0, 0.0 + 1.0, 1.0 + 1.0])  # "question i" has 10 characters


def test_completions_only_reward_gets_no_prompts_and_only_the_columns_it_names():
    seen = {}

    def lengths(completions, level):
        seen.update(completions=completions, level=level)
        return [float(len(c)) for c in completions]

    signature = describe_reward_fn(lengths)
    assert signature.batched and signature.keyword_call and signature.required_columns == ("level",)
    messages, rows = _batch(["a", "b"], ["xyz", "pq"])
    assert RewardEnvironment(lengths).step(messages, rows).rewards["lengths"].tolist() == [3.0, 2.0]
    assert seen == {"completions": ["xyz", "pq"], "level": [0, 1]}


def test_trl_reward_that_returns_a_wrong_length_is_refused():
    messages, rows = _batch(["a", "b"], ["x", "y"])
    with pytest.raises(Exception, match="returned 1"):
        RewardEnvironment(lambda completions, **kw: [1.0]).step(messages, rows)


@pytest.mark.parametrize(
    ("fn", "kwargs", "message"),
    [
        (lambda completions, completion_ids, **kw: [0.0], {},
         "requires TRL's completion_ids, which nemo-rl does not pass"),
        (lambda completions, trainer_state, log_metric, **kw: [0.0], {},
         "requires TRL's log_metric, trainer_state"),
        (lambda completions, **kw: [0.0], {"batched": False}, "cannot be called per sample"),
    ],
)
def test_trl_rewards_nemo_rl_cannot_call_are_refused_when_built(fn, kwargs, message):
    with pytest.raises(TypeError, match=message):
        RewardEnvironment(fn, **kwargs)


def test_trl_trainer_arguments_with_defaults_are_fine():
    def fn(completions, completion_ids=None, trainer_state=None, **kwargs):
        assert completion_ids is None and trainer_state is None
        return [1.0] * len(completions)

    messages, rows = _batch(["a"], ["x"])
    assert RewardEnvironment(fn).step(messages, rows).rewards["fn"].tolist() == [1.0]


def test_grpo_fit_refuses_such_a_reward_before_loading_anything(tmp_path):
    """The model path does not exist: the reward's error must come first."""
    from nemo_rl import GRPOTrainer

    trainer = GRPOTrainer.from_pretrained(str(tmp_path / "no-model"), run_dir=str(tmp_path / "run"))
    with pytest.raises(TypeError, match="requires TRL's completion_ids"):
        trainer.fit(dataset=[{"prompt": "1+1=", "answer": "2"}],
                    reward_fn=lambda completions, completion_ids: [0.0])
    assert not (tmp_path / "run").exists()
