"""Reward-model scoring with a tiny offline classifier saved to disk (no downloads)."""

from __future__ import annotations

import pickle

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
testing = pytest.importorskip("nemo_rl_dtensor.testing")

from nemo_rl.environments import RewardEnvironment  # noqa: E402
from nemo_rl_envs.reward_model import RewardModelEnvironment, RewardModelScorer  # noqa: E402


@pytest.fixture(scope="module")
def tiny_rm(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-rm")
    tokenizer = testing.build_char_tokenizer(path)
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        num_labels=1,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    transformers.LlamaForSequenceClassification(config).save_pretrained(path)
    return path


def _one_by_one(path, prompt, response):
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(path).eval()
    convo = [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
    ids = tokenizer(tokenizer.apply_chat_template(convo, tokenize=False), return_tensors="pt")
    with torch.no_grad():
        return torch.sigmoid(model(**ids).logits[0, 0]).item()


def test_batched_scores_match_unpadded_single_forwards(tiny_rm):
    prompts = ["2+2?", "Name a colour.", "hi"]
    responses = ["4", "A long answer that needs padding in a batch: blue.", ""]
    scores = RewardModelScorer(tiny_rm, batch_size=2)(prompts, responses)
    expected = [_one_by_one(tiny_rm, p, r) for p, r in zip(prompts, responses, strict=True)]
    assert scores == pytest.approx(expected, abs=1e-5)
    assert all(0.0 < s < 1.0 for s in scores) and len(set(scores)) == 3


def test_reward_model_is_a_component_of_a_weighted_reward(tiny_rm):
    scorer = RewardModelScorer(tiny_rm)
    env = RewardEnvironment(
        {
            "rm": (scorer, 0.5),
            "exact": (lambda prompt, response, answer: float(response == answer), 1.0),
        }
    )
    convo = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]
    step = env.step([convo], [{"answer": "4"}])
    rm = step.rewards["rm"].item()
    assert step.total_reward().item() == pytest.approx(1.0 + 0.5 * rm)
    clone = pickle.loads(pickle.dumps(scorer))  # ships to a worker without the loaded model
    assert clone._loaded is None and clone(["2+2?"], ["4"]) == pytest.approx([rm])


def test_reward_model_environment_and_raw_scores(tiny_rm):
    env = RewardModelEnvironment(tiny_rm, transform="raw")
    convo = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    raw = env.step([convo], [{}]).rewards["reward_model"].item()
    assert torch.sigmoid(torch.tensor(raw)).item() == pytest.approx(_one_by_one(tiny_rm, "q", "a"))


def test_a_migrated_nemo_rl_reward_model_config_scores_raw_with_its_settings(tiny_rm):
    pytest.importorskip("omegaconf", reason="legacy migration needs nemo-rl-core[compat]")
    from nemo_rl.compat import migrate_legacy_config
    from nemo_rl.environments import as_environment

    legacy = {
        "grpo": {"num_prompts_per_step": 2},
        "data": {"default": {"env_name": "reward_model"}},
        "env": {"reward_model": {
            "model_name": str(tiny_rm), "tokenizer": {"name": str(tiny_rm)}, "precision": "float32",
            "batch_size": 2, "max_model_len": 64, "resources": {"gpus_per_node": 0, "num_nodes": 1},
            "reward_model_cfg": {"enabled": True, "reward_model_type": "bradley_terry"},
            "dtensor_cfg": {"enabled": True, "tensor_parallel_size": 1},
        }},
    }
    config = migrate_legacy_config(legacy).config
    env = as_environment(config.environment, environment_options=config.environment_options)
    assert isinstance(env, RewardModelEnvironment)
    scorer = env.scorer
    assert (scorer.batch_size, scorer.max_length, scorer.dtype, scorer.transform, scorer.device) == (
        2, 64, "float32", "raw", "cpu"
    )
    convo = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    raw = env.step([convo], [{}]).rewards["reward_model"].item()
    assert torch.sigmoid(torch.tensor(raw)).item() == pytest.approx(_one_by_one(tiny_rm, "q", "a"))
