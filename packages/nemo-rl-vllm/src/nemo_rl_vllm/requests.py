"""From nemo-rl batches to vLLM requests and back, without importing vLLM.

`request_prompts` turns right-padded `input_ids` into token-id prompts (multi-turn continuation is
a longer prompt of token ids: nothing is re-tokenized). `sampling_kwargs` gives the arguments of
one `vllm.SamplingParams` per row: each row gets its own seed derived from the call's seed, since
GRPO repeats every prompt and one seed for all rows would make a group's samples identical.
`collect_outputs` reads the `RequestOutput`s back into the `GenerationBackend` result.

Example:
    >>> from nemo_rl.config import SamplingParams
    >>> kw = sampling_kwargs(SamplingParams(temperature=0.0, max_new_tokens=4, seed=7), 2)
    >>> kw[0]["seed"] != kw[1]["seed"], kw[0]["temperature"], kw[0]["logprobs"]
    (True, 0.0, 0)
"""

from __future__ import annotations

from typing import Any

import torch
from nemo_rl.config.generation import SamplingParams
from nemo_rl.data import BatchedDataDict

# Seeds stay below 2**63 (vLLM keeps them in a torch.Generator, which takes a signed 64-bit int).
_SEED_RANGE = 2**63 - 1


def row_seed(seed: int, row: int) -> int:
    """The seed of row `row` of a call seeded with `seed`: a multiplicative mix rather than
    `seed + row`, so that the next call's seed (often `seed + 1`) does not replay shifted rows.

    Example:
        >>> row_seed(3, 0) == row_seed(3, 0) != row_seed(4, 0) != row_seed(3, 1)
        True
    """
    return (seed * 0x9E3779B97F4A7C15 + (row + 1) * 0xBF58476D1CE4E5B9) % _SEED_RANGE


def request_prompts(prompts: BatchedDataDict) -> list[dict[str, list[int]]]:
    """One `{"prompt_token_ids": [...]}` prompt per row of right-padded `input_ids`.

    Example:
        >>> b = BatchedDataDict(input_ids=torch.tensor([[5, 6, 0], [7, 0, 0]]), input_lengths=torch.tensor([2, 1]))
        >>> request_prompts(b)
        [{'prompt_token_ids': [5, 6]}, {'prompt_token_ids': [7]}]
    """
    for key in ("input_ids", "input_lengths"):
        if key not in prompts:
            raise KeyError(f"generate needs prompts[{key!r}] (keys: {sorted(prompts)})")
    ids, lengths = prompts["input_ids"], prompts["input_lengths"].tolist()
    if min(lengths, default=1) < 1:
        raise ValueError("generate: every prompt needs at least one token (input_lengths >= 1)")
    return [{"prompt_token_ids": ids[i, :n].tolist()} for i, n in enumerate(lengths)]


def sampling_kwargs(sampling: SamplingParams, batch_size: int) -> list[dict[str, Any]]:
    """`vllm.SamplingParams` arguments per row (see the module docstring for the seeds).

    `min_new_tokens` becomes vLLM's `min_tokens` (stop tokens, EOS and stop strings cannot end a
    row before it). `logprobs=0` asks for the sampled token's log-prob only; stop strings stay in
    the output (`include_stop_str_in_output`), as the HF backend counts them in `lengths`; text is
    produced only when stop strings need it.

    Example:
        >>> sampling_kwargs(SamplingParams(top_k=5, stop_strings=["\\n"]), 1)[0]["stop"]
        ['\\n']
    """
    base: dict[str, Any] = {
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "max_tokens": sampling.max_new_tokens,
        "min_tokens": sampling.min_new_tokens,
        "logprobs": 0,
        "stop": list(sampling.stop_strings or []),
        "stop_token_ids": list(sampling.stop_token_ids or []),
        "include_stop_str_in_output": True,
        "detokenize": bool(sampling.stop_strings),
    }
    if sampling.top_k is not None:
        base["top_k"] = sampling.top_k
    if sampling.is_greedy:
        base["top_p"] = 1.0
    rows = []
    for i in range(batch_size):
        row = dict(base)
        if sampling.seed is not None:
            row["seed"] = row_seed(sampling.seed, i)
        rows.append(row)
    return rows


def sampled_logprob(position: Any, token: int) -> float:
    """The log-prob of `token` in one position of vLLM's sample log-probs (a dict of token id ->
    `Logprob`, in the list form and in `FlatLogprobs` alike).

    Example:
        >>> class L: logprob = -0.5
        >>> sampled_logprob({3: L()}, 3)
        -0.5
    """
    return float(position[token].logprob)


def collect_outputs(outputs: list[Any], pad_id: int) -> BatchedDataDict:
    """`output_ids` [B, L] (right-padded with `pad_id`), `logprobs` [B, L] of the sampled tokens
    (0 past the end), `lengths` [B] and `truncated` [B] (finish reason "length") from vLLM's
    `RequestOutput`s in request order.

    Example:
        >>> from types import SimpleNamespace as NS
        >>> class L: logprob = -1.0
        >>> out = NS(outputs=[NS(token_ids=[9, 4], logprobs=[{9: L()}, {4: L()}], finish_reason="stop")])
        >>> r = collect_outputs([out], pad_id=0)
        >>> r["output_ids"].tolist(), r["lengths"].tolist(), r["truncated"].tolist()
        ([[9, 4]], [2], [False])
    """
    completions = [request.outputs[0] for request in outputs]
    width = max((len(c.token_ids) for c in completions), default=0)
    ids = torch.full((len(completions), width), pad_id, dtype=torch.long)
    logprobs = torch.zeros(len(completions), width)
    for row, c in enumerate(completions):
        tokens = list(c.token_ids)
        if c.logprobs is None or len(c.logprobs) < len(tokens):
            raise RuntimeError(
                "vLLM returned no sampled-token log-probs; the request must ask for logprobs=0"
            )
        ids[row, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
        logprobs[row, : len(tokens)] = torch.tensor(
            [sampled_logprob(c.logprobs[t], tok) for t, tok in enumerate(tokens)]
        )
    return BatchedDataDict(
        output_ids=ids,
        logprobs=logprobs,
        lengths=torch.tensor([len(c.token_ids) for c in completions], dtype=torch.long),
        truncated=torch.tensor([c.finish_reason == "length" for c in completions]),
    )
