"""SQuAD (NeMo RL's `sft.yaml`) as chat rows: the passage as the system message, the question
from the user, the first reference answer from the assistant.

Example:
    >>> row = {"context": "Paris is in France.", "question": "Where is Paris?",
    ...        "answers": {"text": ["France", "in France"], "answer_start": [12, 9]}}
    >>> [m["content"] for m in squad.map_rows([row])[0]["messages"]]
    ['Paris is in France.', 'Where is Paris?', 'France']
"""

from __future__ import annotations

from typing import Any

from nemo_rl.data.adapters.base import DatasetAdapter


def _squad_row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "system", "content": row["context"]},
            {"role": "user", "content": row["question"]},
            {"role": "assistant", "content": row["answers"]["text"][0]},
        ]
    }


squad = DatasetAdapter("squad", "rajpurkar/squad", _squad_row)
