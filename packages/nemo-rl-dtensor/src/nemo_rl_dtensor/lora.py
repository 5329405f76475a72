"""LoRA adapters on the training model, built on `peft` (`policy.lora`).

`add_lora_adapters` freezes the HF model and wraps it in a `peft.PeftModel` whose targeted linear
layers carry trainable A and B matrices. It runs before FSDP2 sharding, so `fully_shard` sees
the adapter parameters as ordinary (trainable) parameters next to the frozen base weights.

Every name the user gives is checked against the model: a target or an excluded name that
matches no layer, or a layer index past the last decoder layer, is a `ConfigError` listing what
the model has, because peft would otherwise skip it without a word.

Example:
    >>> resolve_target_modules(None, "qwen2")[:3]
    ['q_proj', 'k_proj', 'v_proj']
"""

from __future__ import annotations

from typing import Any

import torch
from nemo_rl.config import ConfigError
from nemo_rl.config.lora import LoRAConfig

from nemo_rl_dtensor.model_loading import decoder_layers

ADAPTER_NAME = "default"  # peft's name for the one adapter this backend trains
ADAPTER_INIT_SEED = 0

_ATTENTION = ["q_proj", "k_proj", "v_proj", "o_proj"]
_MLP = ["gate_proj", "up_proj", "down_proj"]
# The attention and MLP projections of the families whose layers carry these names.
DEFAULT_TARGET_MODULES: dict[str, list[str]] = {
    family: _ATTENTION + _MLP for family in ("llama", "mistral", "qwen2", "qwen3")
}


def require_peft() -> Any:
    """The `peft` module, or an ImportError that says what to install.

    Example:
        >>> require_peft().__name__
        'peft'
    """
    try:
        import peft
    except ImportError as err:
        raise ImportError(
            "policy.lora.enabled=true needs the peft package, which is not installed: "
            "pip install 'nemo-rl-dtensor[lora]'"
        ) from err
    return peft


def resolve_target_modules(names: list[str] | str | None, model_type: str) -> list[str] | str:
    """The target modules to hand to peft: the user's list, 'all-linear', or the family default.

    Example:
        >>> resolve_target_modules(["q_proj"], "llama")
        ['q_proj']
        >>> resolve_target_modules(None, "gpt2")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        nemo_rl.config.errors.ConfigError: ...model type 'gpt2' has no default target modules...
    """
    if names is not None:
        return names
    if model_type in DEFAULT_TARGET_MODULES:
        return list(DEFAULT_TARGET_MODULES[model_type])
    raise ConfigError(
        f"policy.lora.target_modules is null and model type {model_type!r} has no default target "
        f"modules (known: {', '.join(sorted(DEFAULT_TARGET_MODULES))}); name the layers, e.g. "
        "policy.lora.target_modules=[q_proj,v_proj], or use 'all-linear'"
    )


def _matches(module_name: str, pattern: str) -> bool:
    # peft's rule for a list entry: the whole name, or its last dotted components.
    return module_name == pattern or module_name.endswith("." + pattern)


def decoder_linear_names(model: torch.nn.Module) -> list[str]:
    """Full names of the `nn.Linear` layers inside the decoder blocks of an HF causal LM.

    Example:
        >>> # decoder_linear_names(model)[0] -> 'model.layers.0.self_attn.q_proj'
    """
    layer_ids = {id(layer) for layer in decoder_layers(model)}
    names = []
    inside: set[str] = set()
    for name, module in model.named_modules():
        if id(module) in layer_ids:
            inside.add(name + ".")
        elif isinstance(module, torch.nn.Linear) and any(name.startswith(p) for p in inside):
            names.append(name)
    return names


def _check_against_model(cfg: LoRAConfig, targets: list[str], linear: list[str],
                         all_names: list[str], num_layers: int) -> None:
    suffixes = sorted({n.rsplit(".", 1)[-1] for n in linear})
    for pattern in targets:
        hits = [n for n in all_names if _matches(n, pattern)]
        if not hits:
            raise ConfigError(
                f"policy.lora.target_modules names {pattern!r}, which matches no layer of the "
                f"model; its decoder linear layers are {suffixes}"
            )
        if not any(n in linear for n in hits):
            raise ConfigError(
                f"policy.lora.target_modules names {pattern!r}, which is not a linear layer of a "
                f"decoder block (LoRA here adapts torch.nn.Linear layers); use some of {suffixes}"
            )
    for pattern in cfg.exclude_modules:
        if not any(_matches(n, pattern) for n in all_names):
            raise ConfigError(
                f"policy.lora.exclude_modules names {pattern!r}, which matches no layer of the "
                f"model; write a name such as {linear[0]!r} or a suffix such as {suffixes[0]!r}"
            )
    bad = sorted(i for i in cfg.layers or [] if i >= num_layers)
    if bad:
        raise ConfigError(
            f"policy.lora.layers {bad} are past the model's last decoder layer (it has "
            f"{num_layers}: indices 0-{num_layers - 1})"
        )


def add_lora_adapters(model: torch.nn.Module, cfg: LoRAConfig) -> torch.nn.Module:
    """Freeze `model` and return it wrapped in a peft `PeftModel` with the adapters of `cfg`.

    Example:
        >>> # peft_model = add_lora_adapters(hf_model, LoRAConfig(enabled=True, rank=8))
    """
    peft = require_peft()
    model_type = getattr(model.config, "model_type", "")
    linear = decoder_linear_names(model)
    if not linear:
        raise ConfigError(
            f"policy.lora: the decoder blocks of {type(model).__name__} hold no torch.nn.Linear "
            "layer, and LoRA here adapts only those; train without policy.lora"
        )
    targets = resolve_target_modules(cfg.target_modules, model_type)
    if targets == "all-linear":
        targets = sorted({n.rsplit(".", 1)[-1] for n in linear})
    all_names = [n for n, _ in model.named_modules() if n]
    _check_against_model(cfg, list(targets), linear, all_names, len(decoder_layers(model)))
    peft_config = peft.LoraConfig(
        r=cfg.rank,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=list(targets),
        exclude_modules=list(cfg.exclude_modules) or None,
        layers_to_transform=list(cfg.layers) if cfg.layers is not None else None,
        bias="none",
        task_type="CAUSAL_LM",
    )
    # Each FSDP2 rank initialises its own adapters and keeps only its shard of them, so every rank
    # must draw the same A matrices: a fixed seed (B starts at zero, so the policy starts at the
    # base model whatever A is).
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(ADAPTER_INIT_SEED)
        wrapped = peft.get_peft_model(model, peft_config, adapter_name=ADAPTER_NAME)
    adapted = [name for name, module in wrapped.named_modules() if _is_lora_layer(module)]
    if not adapted:
        raise ConfigError(
            f"policy.lora: no layer got an adapter (targets {list(targets)}, excluded "
            f"{cfg.exclude_modules}, layers {cfg.layers}); loosen exclude_modules or layers"
        )
    for name in adapted:
        base = wrapped.get_submodule(name).get_base_layer()
        if type(base) is not torch.nn.Linear:
            raise ConfigError(
                f"policy.lora: {name} is a {type(base).__name__}, not a torch.nn.Linear; LoRA "
                "here adapts only plain linear layers: leave it out of policy.lora.target_modules"
            )
    return wrapped


def _is_lora_layer(module: torch.nn.Module) -> bool:
    from peft.tuners.lora import LoraLayer

    return isinstance(module, LoraLayer)


def is_lora_model(model: torch.nn.Module) -> bool:
    """True for a model wrapped by `add_lora_adapters` (a peft `PeftModel`).

    Example:
        >>> import torch
        >>> is_lora_model(torch.nn.Linear(1, 1))
        False
    """
    return hasattr(model, "disable_adapter") and hasattr(model, "peft_config")


def lora_scalings(model: torch.nn.Module) -> dict[str, float]:
    """{peft module name: the adapter's scaling (alpha / rank)} for every adapted layer.

    Example:
        >>> # lora_scalings(peft_model) -> {'base_model.model.model.layers.0.self_attn.q_proj': 2.0}
    """
    return {
        name: float(module.scaling[ADAPTER_NAME])
        for name, module in model.named_modules()
        if _is_lora_layer(module)
    }


def parameter_counts(model: torch.nn.Module) -> dict[str, int]:
    """{'trainable': ..., 'total': ...} over the model's parameters (full sizes when sharded;
    the same counting as peft's `get_nb_trainable_parameters`).

    Example:
        >>> import torch
        >>> m = torch.nn.Linear(2, 3)
        >>> m.bias.requires_grad_(False)  # doctest: +ELLIPSIS
        Parameter containing:
        ...
        >>> parameter_counts(m)
        {'trainable': 6, 'total': 9}
    """
    total = trainable = 0
    for param in model.parameters():
        total += param.numel()
        trainable += param.numel() if param.requires_grad else 0
    return {"trainable": trainable, "total": total}
