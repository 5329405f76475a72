"""Math datasets of NeMo RL's GRPO and SFT examples, as `prompt` (the problem) / `answer` rows.

`answer` is the final answer the math environment checks (NeMo RL's `expected_answer` /
ground truth), except where a config names another column (`data.answer_key`): the original
columns stay in each row, so `data.answer_key=generated_solution` trains SFT on
OpenMathInstruct-2's worked solutions, as NeMo RL's `sft_openmathinstruct2.yaml` does.

Example:
    >>> gsm8k.map_rows([{"question": "2+3?", "answer": "2+3=5\\n#### 5"}])[0]["answer"]
    '5'
    >>> dapo_math_17k.map_rows([{"prompt": [{"role": "user", "content": "Solve x+1=2."}],
    ...                          "reward_model": {"ground_truth": "1"}}])[0]["prompt"]
    'Solve x+1=2.'
"""

from __future__ import annotations

from typing import Any

from nemo_rl.data.adapters.base import DatasetAdapter


def _problem_answer(problem: str, answer: str) -> Any:
    return lambda row: {"prompt": row[problem], "answer": str(row[answer])}


def _gsm8k_row(row: dict[str, Any]) -> dict[str, Any]:
    # The final answer follows "####" after the worked solution; the solution stays as `solution`.
    solution = row["answer"]
    final = solution.split("####", 1)[1].strip() if "####" in solution else solution.strip()
    return {"prompt": row["question"], "answer": final, "solution": solution}


def _dapo_row(row: dict[str, Any]) -> dict[str, Any]:
    return {"prompt": row["prompt"][0]["content"], "answer": str(row["reward_model"]["ground_truth"])}


openmathinstruct2 = DatasetAdapter(
    "OpenMathInstruct-2", "nvidia/OpenMathInstruct-2", _problem_answer("problem", "expected_answer"),
    legacy_split="train_1M",  # NeMo RL's default; the hub's `train` split has 14M rows
)
gsm8k = DatasetAdapter("gsm8k", "openai/gsm8k", _gsm8k_row, subset="main")
deepscaler = DatasetAdapter(
    "DeepScaler", "agentica-org/DeepScaleR-Preview-Dataset", _problem_answer("problem", "answer")
)
aime2024 = DatasetAdapter("AIME2024", "HuggingFaceH4/aime_2024", _problem_answer("problem", "answer"))
dapo_math_17k = DatasetAdapter("DAPOMath17K", "BytedTsinghua-SIA/DAPO-Math-17k", _dapo_row)
dapo_math_aime2024 = DatasetAdapter("DAPOMathAIME2024", "BytedTsinghua-SIA/AIME-2024", _dapo_row)
