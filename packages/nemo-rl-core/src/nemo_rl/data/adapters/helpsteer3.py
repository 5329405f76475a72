"""HelpSteer3's preference subset (NeMo RL's `dpo.yaml`) as DPO rows: `prompt` is the
conversation so far, `chosen` / `rejected` the preferred and the other response.

`overall_preference` below 0 prefers `response1`, above 0 `response2`. A tie (0) states no
preference: NeMo RL trained on it with the same response as chosen and rejected, which adds
nothing to the DPO loss but dilutes its average; here those rows are skipped, and counted in a
warning.

Example:
    >>> row = {"context": [{"role": "user", "content": "Hi"}], "response1": "Hello!",
    ...        "response2": "What?", "overall_preference": -2}
    >>> mapped = helpsteer3.map_rows([row])[0]
    >>> mapped["chosen"][0]["content"], mapped["rejected"][0]["content"]
    ('Hello!', 'What?')
"""

from __future__ import annotations

from typing import Any

from nemo_rl.data.adapters.base import DatasetAdapter


def _preference_row(row: dict[str, Any]) -> dict[str, Any] | None:
    preference = row["overall_preference"]
    if preference == 0:
        return None
    first, second = row["response1"], row["response2"]
    chosen, rejected = (first, second) if preference < 0 else (second, first)
    context = row["context"]
    prompt = [{"role": "user", "content": context}] if isinstance(context, str) else context
    return {
        "prompt": prompt,
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
    }


helpsteer3 = DatasetAdapter(
    "HelpSteer3", "nvidia/HelpSteer3", _preference_row, subset="preference",
    skip_reason="overall_preference 0: a tie states no preference",
)
