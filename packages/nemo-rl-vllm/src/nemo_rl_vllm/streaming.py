"""Finished requests as they finish: the engine's step loop, driven here instead of in `LLM.generate`.

`LLM.generate` adds every request, steps the engine until all are done and returns them sorted.
`stream_finished` adds the same requests (same prompts, same `SamplingParams`, same order, so the
same scheduling and the same per-row seeds) and yields each `RequestOutput` the step it finishes,
with its row. The engine steps only while the caller asks for the next row; the rollout engine
scores finished rows in another thread meanwhile (`nemo_rl.rollout.streaming`). Closing the
generator early aborts the requests not yielded yet, so the engine is clean for the next call.

This runs in the caller's thread with the engine the backend already has (in-process by default;
with `VLLM_ENABLE_V1_MULTIPROCESSING=1` the same loop reads from the engine core's process).
vLLM's `AsyncLLM` would need an event loop and a second engine; the step loop needs neither.

Example:
    >>> # for row, output in stream_finished(llm, [{"prompt_token_ids": [5, 6]}], [params], "call-0"):
    >>> #     print(row, output.outputs[0].token_ids)
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from nemo_rl_vllm import compat

_CALLS = itertools.count()


def request_ids(batch_size: int, call: int | None = None) -> list[str]:
    """Request ids of one streamed call: unique in the process (`LLM.generate` numbers its own
    requests 0, 1, ...; ours carry a prefix, so the two never collide).

    Example:
        >>> request_ids(2, call=7)
        ['nemo-rl-stream-7-0', 'nemo-rl-stream-7-1']
    """
    call = next(_CALLS) if call is None else call
    return [f"nemo-rl-stream-{call}-{row}" for row in range(batch_size)]


def stream_finished(llm: Any, prompts: list[Any], params: list[Any]) -> Iterator[tuple[int, Any]]:
    """`(row, RequestOutput)` for each request, in the order the engine finishes them.

    Example: see the module docstring.
    """
    engine = llm.llm_engine
    ids = request_ids(len(prompts))
    added: list[str] = []
    try:
        for rid, prompt, param in zip(ids, prompts, params, strict=True):
            compat.add_request(engine, rid, prompt, param)
            added.append(rid)
    except BaseException:
        compat.abort(engine, added)
        raise
    remaining = {rid: row for row, rid in enumerate(ids)}
    try:
        while remaining:
            if not engine.has_unfinished_requests():
                raise RuntimeError(
                    f"the vLLM engine has no unfinished request but {len(remaining)} streamed "
                    "row(s) never finished; another caller may have aborted them"
                )
            for output in engine.step():
                if output.finished and output.request_id in remaining:
                    yield remaining.pop(output.request_id), output
    finally:
        if remaining:  # closed early (or failed): the rows nobody will read must not run on
            compat.abort(engine, list(remaining))
