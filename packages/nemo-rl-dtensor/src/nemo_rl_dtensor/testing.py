"""Tiny, offline, deterministic HF models and tokenizers for tests and the quickstart.

Nothing here touches the network: the tokenizer has one token per byte (so one per character of
ASCII text) plus chat special tokens, and the model is a randomly initialised Llama or Qwen2 built
from a config. Both are saved as a normal HF directory, so `AutoModelForCausalLM` and
`AutoTokenizer.from_pretrained(path)` load them like any hub model.

Example:
    >>> import tempfile
    >>> from transformers import AutoModelForCausalLM, AutoTokenizer
    >>> path = build_tiny_model(tempfile.mkdtemp(), arch="qwen2")
    >>> tok = AutoTokenizer.from_pretrained(path)
    >>> tok.decode(tok("hi there!")["input_ids"])
    'hi there!'
    >>> AutoModelForCausalLM.from_pretrained(path).config.model_type
    'qwen2'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch

PAD, BOS, EOS, IM_START, IM_END, UNK = (
    "<|pad|>",
    "<|bos|>",
    "<|eos|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|unk|>",
)
SPECIAL_TOKENS = (PAD, BOS, EOS, IM_START, IM_END, UNK)
NUM_SPECIAL = len(SPECIAL_TOKENS)

# Qwen2-style ChatML. A chat turn ends with <|im_end|>, which is therefore the tokenizer's
# eos_token (as in Qwen2.5-Instruct): generation stops at the end of the assistant's turn.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

Arch = Literal["llama", "qwen2"]

# The shape of Qwen2.5-0.5B (494M parameters, tied embeddings), for GPU tests with random weights.
QWEN2_0_5B_SHAPE = dict(
    arch="qwen2",
    vocab_size=151936,
    hidden_size=896,
    layers=24,
    heads=14,
    kv_heads=2,
    intermediate_size=4864,
)

# The shape of Qwen2.5-1.5B (1.54B parameters, tied embeddings), for GPU tests and benchmarks.
QWEN2_1_5B_SHAPE = dict(
    arch="qwen2",
    vocab_size=151936,
    hidden_size=1536,
    layers=28,
    heads=12,
    kv_heads=2,
    intermediate_size=8960,
)


def build_char_tokenizer(path: str | Path | None = None) -> Any:
    """Build a character-level fast tokenizer with a ChatML chat template; save it if `path` is given.

    Ids 0-5 are `<|pad|> <|bos|> <|eos|> <|im_start|> <|im_end|> <|unk|>`; id 6 + b is byte b, so
    every ASCII character is one token and any UTF-8 text round-trips (`decode(encode(s)) == s`).
    It is stored as a byte-level BPE without merges because transformers 5 rebuilds Qwen2
    tokenizers from their vocabulary as byte-level BPE: this form survives that rebuild unchanged,
    so `AutoTokenizer` gives the same ids for Llama and Qwen2 model directories. No BOS is added.

    Example:
        >>> tok = build_char_tokenizer()
        >>> tok("ab")["input_ids"], tok.eos_token, len(tok)  # 6 + ord("a") == 103
        ([103, 104], '<|im_end|>', 262)
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    byte_symbols = bytes_to_unicode()
    for byte in range(256):
        vocab[byte_symbols[byte]] = NUM_SPECIAL + byte
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=None, fuse_unk=False))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=PAD,
        bos_token=BOS,
        eos_token=IM_END,
        unk_token=UNK,
        additional_special_tokens=[EOS, IM_START],
        padding_side="right",
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    if path is not None:
        tokenizer.save_pretrained(str(path))
    return tokenizer


def tiny_model_config(
    arch: Arch = "llama",
    vocab_size: int = 128,
    hidden_size: int = 128,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int | None = None,
    intermediate_size: int | None = None,
    special_ids: dict[str, int] | None = None,
) -> Any:
    """The HF config of a small Llama or Qwen2 (Qwen2 ties its embeddings, like Qwen2.5-0.5B).

    Example:
        >>> tiny_model_config("qwen2", vocab_size=100).tie_word_embeddings
        True
    """
    from transformers import LlamaConfig, Qwen2Config

    if hidden_size % heads != 0:
        raise ValueError(f"hidden_size ({hidden_size}) must be divisible by heads ({heads})")
    ids = special_ids or {}
    common = dict(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size or 2 * hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads
        or (heads // 2 if arch == "qwen2" and heads % 2 == 0 else heads),
        max_position_embeddings=2048,
        pad_token_id=ids.get("pad"),
        bos_token_id=ids.get("bos"),
        eos_token_id=ids.get("eos"),
    )
    if arch == "llama":
        return LlamaConfig(**common, tie_word_embeddings=False)
    if arch == "qwen2":
        return Qwen2Config(**common, tie_word_embeddings=True)
    raise ValueError(f"build_tiny_model: unknown arch {arch!r}; use 'llama' or 'qwen2'")


def build_tiny_model(
    path: str | Path,
    arch: Arch = "llama",
    vocab_size: int | None = None,
    hidden_size: int = 128,
    layers: int = 2,
    heads: int = 4,
    seed: int = 0,
    kv_heads: int | None = None,
    intermediate_size: int | None = None,
) -> Path:
    """Save a random tiny causal LM and its char tokenizer to `path`; return `path`.

    `vocab_size` None uses the tokenizer's size; a larger value pads the embedding as real models
    do. head_dim defaults to 32 (hidden 128 / 4 heads), the least vLLM accepts; `kv_heads` and
    `intermediate_size` default to the architecture's usual ratios, and with real sizes give a
    real model's shape (random weights, e.g. Qwen2.5-0.5B in `QWEN2_0_5B_SHAPE`). The same arguments
    give byte-identical weights (seeded initialisation on CPU in float32).

    Example:
        >>> import tempfile
        >>> p = build_tiny_model(tempfile.mkdtemp(), arch="llama", layers=1)
        >>> sorted(x.name for x in p.iterdir() if x.suffix == ".safetensors")
        ['model.safetensors']
    """
    from transformers import AutoModelForCausalLM, GenerationConfig

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = build_char_tokenizer(path)
    if vocab_size is not None and vocab_size < len(tokenizer):
        raise ValueError(
            f"build_tiny_model: vocab_size={vocab_size} is smaller than the tokenizer ({len(tokenizer)} "
            "tokens); pass None or a larger value"
        )
    ids = {
        "pad": tokenizer.pad_token_id,
        "bos": tokenizer.bos_token_id,
        "eos": tokenizer.eos_token_id,
    }
    config = tiny_model_config(
        arch,
        vocab_size or len(tokenizer),
        hidden_size,
        layers,
        heads,
        kv_heads=kv_heads,
        intermediate_size=intermediate_size,
        special_ids=ids,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.generation_config = GenerationConfig(
        bos_token_id=ids["bos"], eos_token_id=ids["eos"], pad_token_id=ids["pad"]
    )
    model.save_pretrained(str(path))
    return path


def prompt_plus_generation(prompts: Any, generated: Any) -> Any:
    """Right-padded prompt + generated tokens of a `generate` call, as a batch to score with a
    training backend's `get_logprobs` (tests compare both sides' log-probs this way).

    Example:
        >>> from nemo_rl.data import BatchedDataDict
        >>> p = BatchedDataDict(input_ids=torch.tensor([[5, 6, 0]]), input_lengths=torch.tensor([2]))
        >>> g = BatchedDataDict(output_ids=torch.tensor([[7, 0]]), lengths=torch.tensor([1]))
        >>> prompt_plus_generation(p, g)["input_ids"].tolist()
        [[5, 6, 7]]
    """
    from nemo_rl.data import BatchedDataDict

    total = prompts["input_lengths"] + generated["lengths"]
    ids = torch.zeros(prompts.size, int(total.max()), dtype=torch.long)
    for i in range(prompts.size):
        p, n = int(prompts["input_lengths"][i]), int(generated["lengths"][i])
        ids[i, :p] = prompts["input_ids"][i, :p]
        ids[i, p : p + n] = generated["output_ids"][i, :n]
    return BatchedDataDict(input_ids=ids, input_lengths=total)
