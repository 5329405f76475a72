"""ConfigError: pydantic validation errors become one actionable line per problem."""

from __future__ import annotations

import pytest
from nemo_rl.algorithms.grpo.config import GRPOConfig
from nemo_rl.config import ConfigError, OptimizerConfig
from nemo_rl.config.errors import describe_type, unknown_key_message
from pydantic import BaseModel, PositiveFloat, PositiveInt, ValidationError


def translate(model: type[BaseModel], raw: dict, **kwargs) -> ConfigError:
    with pytest.raises(ValidationError) as info:
        model.model_validate(raw)
    return ConfigError.from_validation_error(info.value, model, **kwargs)


def test_unknown_nested_key_names_the_dotted_path_and_suggests_the_field():
    err = translate(GRPOConfig, {"policy": {"optimizer": {"learning_rate": 1e-6}}})
    assert err.problems == ["unknown key 'policy.optimizer.learning_rate'; did you mean 'lr'?"]


def test_unknown_top_level_key_close_to_a_field_is_suggested():
    err = translate(GRPOConfig, {"num_generation_per_prompt": 4})
    assert err.problems == [
        "unknown key 'num_generation_per_prompt'; did you mean 'num_generations_per_prompt'?"
    ]


def test_unknown_key_without_a_close_field_lists_the_valid_keys():
    message = unknown_key_message("policy.optimizer.zzz", OptimizerConfig)
    assert message == (
        "unknown key 'policy.optimizer.zzz': remove it; the valid keys of 'policy.optimizer' are "
        "name, lr, weight_decay, betas, eps"
    )


def test_wrong_type_names_field_value_and_expected_type():
    err = translate(GRPOConfig, {"policy": {"optimizer": {"lr": "fast"}}})
    (problem,) = err.problems
    assert problem.startswith("policy.optimizer.lr = 'fast': ")
    assert "valid number" in problem
    assert problem.endswith("expected float > 0")


def test_out_of_range_value_names_the_bound():
    err = translate(GRPOConfig, {"num_prompts_per_step": 0})
    (problem,) = err.problems
    assert problem.startswith("num_prompts_per_step = 0: Input should be greater than 0")
    assert problem.endswith("expected int > 0")


def test_optional_field_says_null_is_allowed():
    err = translate(GRPOConfig, {"max_val_samples": "many"})
    assert err.problems[0].endswith("expected int > 0 or null")


def test_literal_value_gets_a_did_you_mean():
    err = translate(GRPOConfig, {"policy": {"precision": "bf16"}})
    (problem,) = err.problems
    assert problem.startswith("policy.precision = 'bf16': Input should be 'auto', 'bfloat16'")
    assert problem.endswith("did you mean 'bfloat16'?")


def test_list_elements_are_named_by_index():
    err = translate(GRPOConfig, {"logger": {"backends": ["console", 3]}})
    (problem,) = err.problems
    assert problem.startswith("logger.backends[1] = 3: Input should be a valid string")
    assert problem.endswith("expected str")


def test_custom_validator_message_is_kept_verbatim():
    raw = {"policy": {"train_global_batch_size": 6, "train_micro_batch_size": 4}}
    err = translate(GRPOConfig, raw)
    assert err.problems == [
        "policy.train_global_batch_size (6) must be a multiple of policy.train_micro_batch_size "
        "(4); set one so that it divides the other"
    ]


def test_several_errors_are_all_listed_one_per_line_with_the_file():
    raw = {"seed": "x", "policy": {"optimizer": {"learning_rate": 1}}, "loss": {"kl_type": "k4"}}
    err = translate(GRPOConfig, raw, source="run.yaml")
    lines = str(err).splitlines()
    assert lines[0] == "invalid config in run.yaml (3 problems):"
    assert lines[1].startswith("  - seed = 'x': ")
    assert lines[2] == "  - unknown key 'policy.optimizer.learning_rate'; did you mean 'lr'?"
    assert lines[3].startswith("  - loss.kl_type = 'k4': ")
    assert len(lines) == 4


def test_missing_required_key_says_to_add_it():
    class Needs(BaseModel):
        name: str

    assert translate(Needs, {}).problems == ["missing required key 'name': add it to the config"]


def test_errors_of_one_union_field_become_one_problem():
    class Either(BaseModel):
        value: int | list[int]

    err = translate(Either, {"value": "x"})
    (problem,) = err.problems
    assert problem.startswith("value = 'x': ")
    assert problem.endswith("expected int or list of int")


def test_prefix_places_a_sub_model_inside_a_bigger_config():
    err = translate(OptimizerConfig, {"lrr": 1}, prefix="policy.optimizer")
    assert err.problems == ["unknown key 'policy.optimizer.lrr'; did you mean 'lr'?"]


def test_config_error_is_a_value_error_and_with_source_keeps_a_set_source():
    err = ConfigError("x: bad")
    assert isinstance(err, ValueError)
    assert str(err) == "invalid config: x: bad"
    named = err.with_source("a.yaml")
    assert str(named) == "invalid config in a.yaml: x: bad"
    assert named.with_source("b.yaml") is named


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        (PositiveFloat, "float > 0"),
        (PositiveInt | None, "int > 0 or null"),
        (list[str], "list of str"),
        (tuple[float, float], "list of 2 values (float, float)"),
        (dict[str, int], "mapping"),
        (OptimizerConfig, "mapping (OptimizerConfig)"),
    ],
)
def test_describe_type(annotation, expected):
    assert describe_type(annotation) == expected
