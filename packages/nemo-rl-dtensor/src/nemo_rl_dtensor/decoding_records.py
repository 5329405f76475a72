"""What `HFGenerationBackend` reads off transformers' decoding loop: sampled-token log-probs and
where each row stopped.

HF decoding on a GPU is bound by the host launching kernels, so every operation added to a
decoding step costs time directly. What is recorded per step is therefore kept to the minimum:

- `LogprobRecorder`, a forward hook, does one fused log-softmax and one gather per step, and
  nothing else (no host sync, no stopping criterion of its own).
- Stops by token id need no per-step work at all: `first_stop_positions` finds them in the
  finished sequences (a finished row is padded afterwards, so its first stop token is where it
  stopped).
- Only stop strings need a stopping criterion, `StringStopRecorder`, which notes the step at
  which each row's string first matched.

Example:
    >>> import torch
    >>> first_stop_positions(torch.tensor([[7, 2, 2], [7, 7, 7]]), [2]).tolist()
    [2, 0]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


def first_stop_positions(generated: torch.Tensor, stop_ids: Sequence[int]) -> torch.Tensor:
    """Per row of `generated` [B, L], the 1-based position of its first token in `stop_ids`
    (the row's length, the stop token included), or 0 if it has none.

    Example:
        >>> first_stop_positions(torch.tensor([[5, 9, 5], [1, 1, 1]]), [5, 3]).tolist()
        [1, 0]
    """
    if generated.shape[1] == 0 or len(stop_ids) == 0:
        return torch.zeros(generated.shape[0], dtype=torch.long)
    stops = torch.isin(generated, torch.tensor(list(stop_ids), dtype=generated.dtype))
    # argmax over a 0/1 tensor returns the first maximum: the first stop when there is one.
    first = stops.int().argmax(dim=1) + 1
    return torch.where(stops.any(dim=1), first, torch.zeros_like(first))


def combine_stops(by_token: torch.Tensor, by_string: torch.Tensor | None) -> torch.Tensor:
    """The earlier of two per-row stop positions, where 0 means "did not stop".

    Example:
        >>> combine_stops(torch.tensor([0, 3, 4, 0]), torch.tensor([2, 5, 0, 0])).tolist()
        [2, 3, 4, 0]
    """
    if by_string is None:
        return by_token
    never = torch.iinfo(torch.long).max
    earliest = torch.minimum(
        torch.where(by_token > 0, by_token, never), torch.where(by_string > 0, by_string, never)
    )
    return torch.where(earliest == never, torch.zeros_like(earliest), earliest)


class LogprobRecorder:
    """A forward hook (`register_forward_hook(recorder, with_kwargs=True)`) that records the
    log-prob of every sampled token under the unscaled model, from `generate`'s own passes.

    A decoding pass returns the logits of the next token, and that token, once sampled, is the
    next pass's `input_ids`: so each call scores the previous pass's logits against its own
    input, then keeps its logits for the next call. The last sampled token never enters a pass;
    `logprobs(sequences)` scores it from the final sequences. One step's logits are held at a time.

    Example:
        >>> rec = LogprobRecorder()
        >>> class Out:
        ...     logits = torch.tensor([[[0.0, 0.0]]])
        >>> rec(None, (), {"input_ids": torch.tensor([[1]])}, Out())
        >>> rec.logprobs(torch.tensor([[1, 0]]), steps=1)  # log(1/2)
        tensor([[-0.6931]])
    """

    def __init__(self) -> None:
        self._steps: list[torch.Tensor] = []
        self._pending: torch.Tensor | None = None

    def __call__(self, module: Any, args: Any, kwargs: dict[str, Any], output: Any) -> None:
        if self._pending is not None:
            ids = kwargs.get("input_ids", args[0] if args else None)
            if ids is None:
                raise RuntimeError(
                    "HF generation could not read the sampled token from the model's forward "
                    "inputs (no input_ids); the hf backend needs a model that decodes from token ids"
                )
            self._score(ids[:, -1])
        self._pending = output.logits[:, -1]

    def _score(self, tokens: torch.Tensor) -> None:
        assert self._pending is not None
        # dtype=float32 upcasts inside the one softmax kernel: no separate cast, no temporaries.
        logprobs = torch.log_softmax(self._pending, dim=-1, dtype=torch.float32)
        self._steps.append(logprobs.gather(-1, tokens.unsqueeze(-1)).squeeze(-1))
        self._pending = None

    def logprobs(self, sequences: torch.Tensor, steps: int) -> torch.Tensor:
        """[B, steps] log-probs of the last `steps` tokens of `sequences`, on the CPU."""
        if steps > 0 and self._pending is not None:
            self._score(sequences[:, -1])
        if len(self._steps) != steps:
            raise RuntimeError(
                f"HF generation recorded {len(self._steps)} log-prob steps for {steps} generated "
                "tokens; the model's forward hook did not run once per decoding step (assisted or "
                "beam decoding is not supported by the hf backend)"
            )
        if steps == 0:
            return torch.zeros(sequences.shape[0], 0)
        return torch.stack(self._steps, dim=1).cpu()


class StringStopRecorder:
    """A stopping criterion that ends rows at stop strings (through `criterion`, transformers'
    `StopStringCriteria`) and records the step at which each row first matched (0 = never).

    Example:
        >>> rec = StringStopRecorder(lambda ids, scores: ids[:, -1] == 9, prompt_width=1, batch_size=2)
        >>> rec(torch.tensor([[0, 9], [0, 3]]), None).tolist(), rec.stopped_at.tolist()
        ([True, False], [1, 0])
    """

    def __init__(
        self, criterion: Any, prompt_width: int, batch_size: int, min_steps: int = 0
    ) -> None:
        self.criterion = criterion
        self.prompt_width = prompt_width
        self.min_steps = min_steps  # a match before this many tokens does not stop the row
        self.stopped_at = torch.zeros(batch_size, dtype=torch.long)

    def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
        if self.stopped_at.device != input_ids.device:
            self.stopped_at = self.stopped_at.to(input_ids.device)
        step = input_ids.shape[1] - self.prompt_width
        done = self.criterion(input_ids, scores) & (step >= self.min_steps)
        self.stopped_at = torch.where(done & (self.stopped_at == 0), step, self.stopped_at)
        return done
