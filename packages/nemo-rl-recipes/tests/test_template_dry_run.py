"""Every template passes `nemo-rl train <template> <tiny model, local data, 1 CPU> --dry-run`; a
backend that is not installed fails the dry run with the one "not installed" line naming what to
install, and a planned one with "not available yet".

A dry run validates the config, resolves the plugins, loads the tokenizer and the first batch and
prints the batch arithmetic; it must train nothing and write nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from nemo_rl import registry
from nemo_rl.cli.main import main
from nemo_rl.config import load_config
from nemo_rl_recipes import list_templates

TEMPLATES = list_templates()
CPU_CLUSTER = ["cluster.num_nodes=1", "cluster.gpus_per_node=0", "cluster.launcher=inline"]
NUM_ROWS = 512  # a full step for every template (the largest step is 512 SFT rows)


def plugins_of(config) -> list[tuple[str, str]]:
    """(group, name) of each plugin the template names, in the order a dry run resolves them."""
    plugins = [("training_backends", config.policy.backend)]
    if config.algorithm == "grpo":
        plugins.append(("generation_backends", config.generation.backend))
    return plugins


def missing_plugins(config) -> list[tuple[str, str]]:
    return [(g, n) for g, n in plugins_of(config) if n not in registry.available(g)]


def write_rows(config, path: Path) -> Path:
    """A JSONL file whose columns are the ones the template's data.* keys name."""
    d = config.data
    rows = []
    for i in range(NUM_ROWS):
        prompt, answer = f"{i % 10}+{i // 10 % 10}=", str(i % 10 + i // 10 % 10)
        if d.messages_key:
            conversation = [
                {"role": "user", "content": prompt},
                {"role": "assistant", "content": answer},
            ]
            rows.append({d.messages_key: conversation})
        elif config.algorithm == "dpo":
            rows.append({d.prompt_key: prompt, d.chosen_key: answer, d.rejected_key: answer + "0"})
        else:
            rows.append({d.prompt_key: prompt, d.answer_key: answer})
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def dry_run_args(info, workdir: Path, tiny_model: Path) -> list[str]:
    """`train <template> ... --dry-run` with the tiny model, local data files and 1 CPU."""
    config = load_config(info.path)
    args = [str(info.path), f"policy.model_name={tiny_model}", *CPU_CLUSTER]
    if config.policy.tokenizer.name:
        args.append(f"policy.tokenizer.name={tiny_model}")
    args.append(f"data.dataset={write_rows(config, workdir / 'train.jsonl')}")
    if config.data.val_dataset:
        args.append(f"data.val_dataset={write_rows(config, workdir / 'val.jsonl')}")
    return ["train", *args, "--dry-run"]


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_dry_run_passed(code: int, out: str, err: str, algorithm: str, workdir: Path) -> None:
    assert code == 0, err
    assert "dry run: OK (nothing was trained)" in out
    assert "optimizer batch: " in out
    if algorithm == "grpo":
        assert " sequences/step" in out
    if algorithm == "dpo":
        assert "preference pairs/step" in out
    steps = next(line for line in out.splitlines() if line.startswith("steps: "))
    assert not steps.startswith("steps: 0"), steps
    # Nothing trained, nothing written: no run directory, no checkpoint directory.
    assert {p.name for p in workdir.iterdir()} <= {"train.jsonl", "val.jsonl"}


@pytest.fixture(params=TEMPLATES, ids=[t.name for t in TEMPLATES])
def template(request: pytest.FixtureRequest):
    return request.param


def test_templates_name_only_installed_plugins():
    """Templates must run as shipped: none names a backend this installation lacks."""
    assert {t.name: missing_plugins(load_config(t.path)) for t in TEMPLATES} == {
        t.name: [] for t in TEMPLATES
    }


def test_template_dry_run(template, tiny_model, in_tmp_dir, capsys, restore_logging):
    code, out, err = run_cli(dry_run_args(template, in_tmp_dir, tiny_model), capsys)
    assert_dry_run_passed(code, out, err, template.algorithm, in_tmp_dir)


def test_dry_run_names_the_package_of_a_backend_that_is_not_installed(
    tiny_model, in_tmp_dir, capsys, restore_logging
):
    if "vllm" in registry.available("generation_backends"):
        pytest.skip("vllm is installed here")
    info = next(t for t in TEMPLATES if t.name == "grpo-math-1gpu")
    args = dry_run_args(info, in_tmp_dir, tiny_model)
    code, out, err = run_cli([*args[:-1], "generation.backend=vllm", "--dry-run"], capsys)
    assert code == 2 and err.startswith("error: ")
    assert "generation backend 'vllm' is not installed: pip install nemo-rl-vllm" in err
    assert "Traceback" not in err + out


def test_dry_run_names_the_package_of_a_training_backend_that_is_not_installed(
    tiny_model, in_tmp_dir, capsys, restore_logging
):
    if "megatron" in registry.available("training_backends"):
        pytest.skip("megatron is installed here")
    info = next(t for t in TEMPLATES if t.name == "grpo-math-1gpu")
    args = dry_run_args(info, in_tmp_dir, tiny_model)
    code, out, err = run_cli([*args[:-1], "policy.backend=megatron", "--dry-run"], capsys)
    assert code == 2
    assert err.strip() == "error: training backend 'megatron' is not installed: pip install nemo-rl-megatron"
    assert "Traceback" not in err + out
