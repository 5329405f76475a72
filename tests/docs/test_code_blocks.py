"""Every ```python block of the README and docs/ runs, on a tiny offline model.

The blocks of one page run in order in one namespace (a later block may use an earlier one's
names), in a fresh working directory that holds `runs/quickstart/sft/checkpoints/step_300`: the
path of the SFT model `nemo-rl quickstart` leaves behind, which the pages train from. Here it is a
random 1-layer Qwen2 with the character tokenizer of `nemo_rl_dtensor.testing`, nudged so that a
sampled response ends after about six tokens (as a trained model's would): the GRPO examples then
take seconds, not the minutes a random model's 512-token answers take. The directory also holds
`examples/configs/`, NeMo RL's example configs as a NeMo RL checkout has them (the copies that
nemo_rl.compat's tests read), for the migration guide.

A block that cannot run here (it needs a GPU or the hub) carries, on the line before its fence,
`<!-- docs-test: skip: <why> -->`; the reason is required and printed. A block that shows a file
the reader saves (a plugin module) carries `<!-- docs-test: file: <name> -->`: it is written to
that name in the working directory, which is on `sys.path`, so later blocks import it.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import pytest
import torch
from nemo_rl import registry

ROOT = Path(__file__).resolve().parents[2]
MODEL_PATH = "runs/quickstart/sft/checkpoints/step_300"
LEGACY_CONFIGS = ROOT / "packages/nemo-rl-core/tests/data/legacy_configs"
SKIP = re.compile(r"<!--\s*docs-test:\s*skip:\s*(?P<why>.*?)\s*-->")
FILE = re.compile(r"<!--\s*docs-test:\s*file:\s*(?P<name>[\w./-]+?)\s*-->")
FENCE = re.compile(r"^```(?P<lang>[\w+-]*)\s*$")


def pages() -> list[Path]:
    """README.md and every hand-written page under docs/ (the generated reference has no code)."""
    docs = sorted(p for p in (ROOT / "docs").rglob("*.md") if "reference" not in p.parts)
    return [ROOT / "README.md", *docs]


def python_blocks(text: str) -> list[tuple[int, str, str | None, str | None]]:
    """(line number, code, skip reason, file name) of each ```python block of a markdown text.

    Example:
        >>> python_blocks("a\\n<!-- docs-test: skip: needs a GPU -->\\n```python\\nx = 1\\n```\\n")
        [(3, 'x = 1\\n', 'needs a GPU', None)]
    """
    lines = text.splitlines()
    blocks, i = [], 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match or not match["lang"]:
            i += 1
            continue
        start, lang = i, match["lang"]
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == "```"), None)
        if end is None:
            raise ValueError(f"line {start + 1}: a ```{lang} fence is never closed")
        if lang == "python":
            marker = lines[start - 1] if start > 0 else ""
            skip, file = SKIP.search(marker), FILE.search(marker)
            code = "\n".join(lines[start + 1 : end]) + "\n"
            blocks.append((start + 1, code, skip["why"] if skip else None, file["name"] if file else None))
        i = end + 1
    return blocks


def build_docs_model(path: Path) -> Path:
    """The tiny model of the docs examples, saved at `path` (see the module docstring)."""
    from nemo_rl_dtensor.testing import build_tiny_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    build_tiny_model(path, arch="qwen2", hidden_size=64, layers=1, heads=2, seed=0)
    model = AutoModelForCausalLM.from_pretrained(path)
    eos = AutoTokenizer.from_pretrained(path).eos_token_id
    with torch.no_grad():
        # One constant direction in every input embedding survives the random layer, so the
        # end-of-turn row of the output head scores above the rest by a fixed margin: about a
        # 1-in-6 chance to stop at each token.
        model.get_input_embeddings().weight[:, 0] = 1.0
        head = model.get_output_embeddings().weight
        head[eos, 0] = head[:, 0].mean() + 0.3
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def docs_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_docs_model(tmp_path_factory.mktemp("docs-model") / "model")


def _page_id(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("page", pages(), ids=_page_id)
def test_python_blocks_run(page: Path, docs_model: Path, tmp_path: Path, monkeypatch):
    blocks = python_blocks(page.read_text(encoding="utf-8"))
    runnable = [(line, code, file) for line, code, skip, file in blocks if skip is None]
    for line, _, skip, _ in blocks:
        if skip is not None:
            assert len(skip) >= 10, f"{_page_id(page)}:{line}: say why the block cannot run here"
            print(f"{_page_id(page)}:{line}: not run: {skip}")
    if not runnable:
        pytest.skip(f"{_page_id(page)} has no runnable python block")
    model_dir = tmp_path / MODEL_PATH
    model_dir.parent.mkdir(parents=True)
    os.symlink(docs_model, model_dir)
    shutil.copytree(LEGACY_CONFIGS, tmp_path / "examples/configs")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    modules_before = set(sys.modules)
    plugins_before = {group: set(registry.available(group)) for group in registry.GROUPS}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny model on a shared 2-core machine: one thread is fastest
    namespace: dict = {"__name__": "__docs__"}
    try:
        for line, code, file in runnable:
            if file is not None:
                (tmp_path / file).write_text(code, encoding="utf-8")
                continue
            try:
                exec(compile(code, f"{_page_id(page)}:{line}", "exec"), namespace)
            except Exception as err:
                raise AssertionError(
                    f"the python block at {_page_id(page)}:{line} failed: {err!r}; fix the page "
                    "(blocks run in order, from a directory holding the quickstart's model path), "
                    "or, for a block that genuinely needs a GPU or the hub, put "
                    "`<!-- docs-test: skip: <why> -->` on the line before its fence"
                ) from err
    finally:
        torch.set_num_threads(threads)
        for group, names in plugins_before.items():  # a page's registrations end with the page
            for name in set(registry.available(group)) - names:
                registry.unregister(group, name)
        # Forget the page's own modules (written files) so another page may reuse a name.
        for name in set(sys.modules) - modules_before:
            module_file = getattr(sys.modules[name], "__file__", None) or ""
            if module_file.startswith(str(tmp_path)):
                del sys.modules[name]
