"""Adapters for the datasets NeMo RL's example configs name, registered as nemo-rl datasets.

| name | hub dataset | rows |
|---|---|---|
| `squad` | rajpurkar/squad | `messages`: passage (system), question, first answer |
| `HelpSteer3` | nvidia/HelpSteer3 (preference) | `prompt`, `chosen`, `rejected` (ties skipped) |
| `OpenMathInstruct-2` | nvidia/OpenMathInstruct-2 | `prompt` = problem, `answer` = expected_answer |
| `gsm8k` | openai/gsm8k (main) | `prompt` = question, `answer` = the number after `####` |
| `DeepScaler` | agentica-org/DeepScaleR-Preview-Dataset | `prompt` = problem, `answer` |
| `AIME2024` | HuggingFaceH4/aime_2024 | `prompt` = problem, `answer` |
| `DAPOMath17K` | BytedTsinghua-SIA/DAPO-Math-17k | `prompt` = the user message, `answer` = ground truth |
| `DAPOMathAIME2024` | BytedTsinghua-SIA/AIME-2024 | as DAPOMath17K |

`data.dataset: NAME` loads the hub copy; `data.dataset: NAME:PATH` a local copy in the same
format (see `nemo_rl.data.adapters.base`).

Example:
    >>> from nemo_rl import registry
    >>> registry.resolve("datasets", "gsm8k").hub_id
    'openai/gsm8k'
"""

from __future__ import annotations

from nemo_rl.data.adapters.base import DatasetAdapter

__all__ = ["DatasetAdapter"]
