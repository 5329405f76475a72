"""Config templates: every shipped YAML validates and stays short; lookup errors; `nemo-rl templates`."""

from __future__ import annotations

import sys
from collections import Counter
from importlib import resources
from pathlib import Path

import pytest
import yaml
from nemo_rl.cli.main import main
from nemo_rl.config import load_config
from nemo_rl.config.schema import ABSENT, flatten
from nemo_rl_recipes.templates import (
    TemplateError,
    TemplateInfo,
    TemplateNotFoundError,
    list_templates,
    load_template,
    template_path,
    template_text,
)

TEMPLATES = list_templates()
NAMES = [info.name for info in TEMPLATES]
MAX_LINES = 30
# Keys a template states even when they equal the default, so a reader sees them at a glance.
ALWAYS_STATED = {"algorithm", "policy.model_name"}


@pytest.fixture(params=TEMPLATES, ids=NAMES)
def info(request: pytest.FixtureRequest) -> TemplateInfo:
    return request.param


def test_templates_ship_as_package_data():
    shipped = {
        entry.name
        for entry in resources.files("nemo_rl_recipes.templates").iterdir()
        if entry.name.endswith(".yaml")
    }
    assert shipped == {f"{name}.yaml" for name in NAMES}
    assert len(shipped) >= 15


def test_at_least_five_templates_per_algorithm():
    counts = Counter(info.algorithm for info in TEMPLATES)
    assert set(counts) == {"grpo", "sft", "dpo"}
    assert all(count >= 5 for count in counts.values()), counts


def test_template_validates_and_names_its_algorithm(info: TemplateInfo):
    cfg = load_config(info.path)
    assert cfg.algorithm == info.algorithm
    assert load_template(info.name).model_dump() == cfg.model_dump()


def test_template_is_short_and_described(info: TemplateInfo):
    lines = info.path.read_text(encoding="utf-8").splitlines()
    assert len(lines) < MAX_LINES
    assert lines[0] == f"# {info.description}"
    assert 20 <= len(info.description) <= 110  # one readable table row


def test_template_states_only_what_differs_from_the_defaults(info: TemplateInfo):
    raw = yaml.safe_load(info.path.read_text(encoding="utf-8"))
    assert "defaults" not in raw, "templates must be self-contained (they are copied by `show`)"
    assert "policy" in raw and "model_name" in raw["policy"], "every template names its model"
    cfg = load_config(info.path)
    resolved = flatten(cfg.model_dump(mode="json"))
    default = flatten(type(cfg)().model_dump(mode="json"))
    restated = [
        key
        for key in flatten(raw)
        if key not in ALWAYS_STATED and resolved.get(key, ABSENT) == default.get(key, ABSENT)
    ]
    assert restated == [], f"{info.name} restates default values: {restated}"


def test_template_hardware_settings_are_consistent(info: TemplateInfo):
    cfg = load_config(info.path)
    cluster = cfg.cluster
    assert cluster.gpus_per_node >= 1, "templates target GPUs"
    if cluster.num_nodes > 1:
        assert cluster.launcher == "ray"
    elif cluster.gpus_per_node > 1:
        assert cluster.launcher in ("local", "ray")
    else:
        assert cluster.launcher == "inline"


@pytest.mark.parametrize("name", [n for n in NAMES if n.startswith("grpo")])
def test_grpo_template_has_a_reward_and_an_installed_generator(name: str):
    cfg = load_template(name)
    assert cfg.environment
    # Templates run as shipped with the default install: hf generation (vllm is the optional
    # nemo-rl-vllm package; `generation.backend=vllm` switches a template to it).
    assert cfg.generation.backend == "hf"
    assert cfg.generation.max_new_tokens < cfg.policy.max_total_sequence_length
    if cfg.environment == "math":  # math_reward reads the row's `answer` column itself
        assert cfg.data.answer_key == "answer"


def _environment_class(name: str) -> type:
    """The class `environment: name` builds: from the registry, or (until nemo-rl-envs declares
    its entry points) from nemo_rl_envs directly, under the names the templates use."""
    from nemo_rl import registry

    if name in registry.available("environments"):
        return registry.resolve("environments", name)
    import nemo_rl_envs

    by_name = {
        "math": nemo_rl_envs.MathEnvironment,
        "code": nemo_rl_envs.CodeExecutionEnvironment,
        "guess_number": nemo_rl_envs.GuessNumberEnvironment,
    }
    return by_name[name]


@pytest.mark.parametrize("name", [n for n in NAMES if n.startswith("grpo")])
def test_grpo_template_environment_builds_with_its_options(name: str):
    cfg = load_template(name)
    environment = _environment_class(cfg.environment)(**cfg.environment_options)
    if cfg.max_rollout_turns > 1:  # a game that ends before the rollout turns would waste them
        assert environment.max_turns == cfg.max_rollout_turns


def test_load_template_applies_overrides():
    cfg = load_template("sft-chat", ["policy.optimizer.lr=1e-6", "batch_size=8"])
    assert (cfg.policy.optimizer.lr, cfg.batch_size) == (1e-06, 8)
    assert load_template("dpo-ultrafeedback", {"beta": 0.05}).beta == 0.05


def test_template_path_accepts_the_file_name():
    assert template_path("sft-chat.yaml") == template_path("sft-chat")


def test_unknown_template_suggests_the_closest_name():
    with pytest.raises(TemplateNotFoundError, match=r"did you mean 'grpo-math-1gpu'"):
        template_path("grpo-math-1gp")
    with pytest.raises(TemplateNotFoundError, match=r"no config template named 'xyzzy'") as err:
        template_path("xyzzy")
    assert "did you mean" not in str(err.value)


def test_malformed_template_files_get_clear_errors(tmp_path: Path):
    no_header = tmp_path / "bare.yaml"
    no_header.write_text("algorithm: sft\n")
    with pytest.raises(TemplateError, match="does not start with a description line"):
        TemplateInfo.from_file(no_header)
    no_algorithm = tmp_path / "anon.yaml"
    no_algorithm.write_text("# a template without its algorithm\nseed: 1\n")
    with pytest.raises(TemplateError, match="has no 'algorithm' key"):
        TemplateInfo.from_file(no_algorithm)
    good = tmp_path / "ok.yaml"
    good.write_text("# tiny SFT\nalgorithm: sft\n")
    assert TemplateInfo.from_file(good) == TemplateInfo("ok", "sft", "tiny SFT", good)


def test_cli_lists_every_template(capsys: pytest.CaptureFixture[str]):
    assert main(["templates"]) == 0
    out = capsys.readouterr().out
    for info in TEMPLATES:
        row = next(line for line in out.splitlines() if f" {info.name} " in line)
        assert info.algorithm in row and info.description in row


def test_cli_lists_one_algorithm(capsys: pytest.CaptureFixture[str]):
    assert main(["templates", "--algorithm", "dpo"]) == 0
    out = capsys.readouterr().out
    assert "dpo-ultrafeedback" in out and "grpo-math-1gpu" not in out


def test_cli_unknown_algorithm_names_the_known_ones(capsys: pytest.CaptureFixture[str]):
    assert main(["templates", "--algorithm", "ppo"]) == 2
    assert "templates exist for dpo, grpo, sft" in capsys.readouterr().err


def test_cli_show_prints_the_yaml_exactly(capsys: pytest.CaptureFixture[str]):
    assert main(["templates", "show", "grpo-dapo-math"]) == 0
    assert capsys.readouterr().out == template_text("grpo-dapo-math")


def test_cli_show_unknown_name_is_one_error_line(capsys: pytest.CaptureFixture[str]):
    assert main(["templates", "show", "sft-chats"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "did you mean 'sft-chat'" in captured.err
    assert len(captured.err.strip().splitlines()) == 1


def test_cli_without_nemo_rl_recipes_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    for module in [m for m in sys.modules if m.startswith("nemo_rl_recipes")]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "nemo_rl_recipes", None)  # makes the import fail
    assert main(["templates"]) == 2
    assert "pip install nemo-rl-recipes" in capsys.readouterr().err
