"""Loading the tokenizer a run uses (transformers is imported only here, when a run starts).

Example:
    >>> from nemo_rl.config import PolicyConfig
    >>> tok = load_tokenizer(PolicyConfig(model_name="/path/to/model"))  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from nemo_rl.config import PolicyConfig


def load_tokenizer(policy: PolicyConfig) -> Any:
    """The HF tokenizer of `policy` with a pad token and the configured chat template.

    A tokenizer without a pad token gets its EOS token as pad (the masks, not the pad id, decide
    what is trained on).
    """
    try:
        from transformers import AutoTokenizer
    except ImportError as err:  # core does not depend on transformers
        raise ImportError(
            "loading a tokenizer needs transformers: pip install nemo-rl-dtensor "
            "(or pip install transformers)"
        ) from err
    from nemo_rl.hub import pretrained_kwargs

    name = policy.tokenizer_name
    setting = "policy.tokenizer.name" if policy.tokenizer.name else "policy.model_name"
    # A missing path or an unreachable hub fails here in one line, not after a minute of retries.
    extra = pretrained_kwargs(name, setting)
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            name, trust_remote_code=policy.trust_remote_code, **extra
        )
    except OSError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise FileNotFoundError(
            f"could not load the tokenizer {name!r} (policy.tokenizer.name / policy.model_name): "
            f"{first}; give a local model directory or a hub name reachable from this machine"
        ) from err
    if policy.tokenizer.chat_template is not None:
        tokenizer.chat_template = policy.tokenizer.chat_template
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
