"""Reward models: score (prompt, response) pairs with an HF sequence-classification model.

`RewardModelScorer` is a batched reward callable (`scorer(prompts, responses) -> list[float]`),
so it can be a component of any weighted `RewardEnvironment`; `RewardModelEnvironment` wraps one.
The model loads on first use (in whichever process or worker ends up calling it) on `device`;
calls are serialized by a lock, so one scorer can be shared by threads.

Scores: a one-label model's logit goes through a sigmoid (`transform="sigmoid"`, in (0, 1)) or
is returned as is (`"raw"`); a model with several labels gives the softmax probability of
`positive_label`. Each pair is formatted with the tokenizer's chat template when it has one
(user = prompt, assistant = response), else as a text pair; inputs are cut at `max_length` tokens.
Needs `torch` and `transformers` (installed with nemo-rl-dtensor).

Example:
    >>> scorer = RewardModelScorer("path/to/reward-model", device="cpu")  # doctest: +SKIP
    >>> scorer(["2+2?", "2+2?"], ["4", "5"])  # doctest: +SKIP
    [0.93, 0.12]
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from nemo_rl.environments import RewardEnvironment

TRANSFORMS = ("sigmoid", "raw")
DTYPES = ("float32", "bfloat16", "float16")


class RewardModelScorer:
    """A batched reward from a sequence-classification model (see the module docstring).

    Example:
        >>> RewardModelScorer("m", transform="tanh")
        Traceback (most recent call last):
        ...
        ValueError: RewardModelScorer: transform='tanh' is not one of ('sigmoid', 'raw')
    """

    batched = True

    def __init__(
        self,
        model: str | Path,
        device: str = "cpu",
        batch_size: int = 16,
        max_length: int = 2048,
        transform: str = "sigmoid",
        positive_label: int = 1,
        dtype: str = "float32",
    ) -> None:
        if transform not in TRANSFORMS:
            raise ValueError(
                f"RewardModelScorer: transform={transform!r} is not one of {TRANSFORMS}"
            )
        if batch_size < 1 or max_length < 1:
            raise ValueError(
                f"RewardModelScorer: batch_size={batch_size} and max_length="
                f"{max_length} must be positive"
            )
        if dtype not in DTYPES:
            raise ValueError(f"RewardModelScorer: dtype={dtype!r} is not one of {DTYPES}")
        self.model_name = str(model)
        self.device = device
        self.batch_size = batch_size
        self.max_length = max_length
        self.transform = transform
        self.positive_label = positive_label
        self.dtype = dtype
        self._lock = threading.Lock()
        self._loaded: tuple[Any, Any] | None = None
        self.__name__ = "reward_model"

    def __getstate__(self) -> dict:  # picklable for process pools: the model reloads there
        state = dict(self.__dict__)
        state["_lock"], state["_loaded"] = None, None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _load(self) -> tuple[Any, Any]:
        if self._loaded is None:
            import torch
            from transformers import AutoModelForSequenceClassification, AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(self.model_name)
            if tokenizer.pad_token is None:  # padding a batch needs one; eos is the usual stand-in
                tokenizer.pad_token = tokenizer.eos_token
            model = AutoModelForSequenceClassification.from_pretrained(
                self.model_name, dtype=getattr(torch, self.dtype)
            )
            model.config.pad_token_id = tokenizer.pad_token_id  # marks each row's last token
            model.to(self.device).eval()
            self._loaded = (tokenizer, model)
        return self._loaded

    def _texts(self, tokenizer: Any, prompt: str, response: str) -> Any:
        if getattr(tokenizer, "chat_template", None):
            convo = [
                {"role": "user", "content": prompt},
                {"role": "assistant", "content": response},
            ]
            return tokenizer.apply_chat_template(convo, tokenize=False)
        return (prompt, response)

    def __call__(self, prompts: list[str], responses: list[str], **_: Any) -> list[float]:
        import torch

        with self._lock:
            tokenizer, model = self._load()
            scores: list[float] = []
            for start in range(0, len(responses), self.batch_size):
                pairs = [
                    self._texts(tokenizer, p or "", r or "")
                    for p, r in zip(
                        prompts[start : start + self.batch_size],
                        responses[start : start + self.batch_size],
                        strict=True,
                    )
                ]
                if pairs and isinstance(pairs[0], tuple):
                    args = ([p for p, _ in pairs], [r for _, r in pairs])
                else:
                    args = (pairs,)
                batch = tokenizer(
                    *args,
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                )
                with torch.no_grad():
                    logits = model(**batch.to(self.device)).logits.float()
                scores.extend(self._scores(logits).tolist())
            return scores

    def _scores(self, logits: Any) -> Any:
        import torch

        if logits.shape[-1] == 1:
            raw = logits[:, 0]
            return torch.sigmoid(raw) if self.transform == "sigmoid" else raw
        return torch.softmax(logits, dim=-1)[:, self.positive_label]


class RewardModelEnvironment(RewardEnvironment):
    """Single-turn environment with one component, `reward_model`, scored by a classifier.

    Example:
        >>> env = RewardModelEnvironment("path/to/reward-model", device="cuda")  # doctest: +SKIP
    """

    def __init__(
        self,
        model: str | Path,
        device: str = "cpu",
        batch_size: int = 16,
        max_length: int = 2048,
        transform: str = "sigmoid",
        positive_label: int = 1,
        on_error: str = "raise",
        dtype: str = "float32",
    ) -> None:
        self.scorer = RewardModelScorer(
            model, device, batch_size, max_length, transform, positive_label, dtype
        )
        super().__init__({"reward_model": self.scorer}, on_error=on_error)  # type: ignore[arg-type]
