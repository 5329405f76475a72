"""Policy losses by name: the GRPO trainer builds the loss that `loss.name` names.

A policy loss is registered as a factory: anything called with the run's `GRPOLossConfig` (the
`loss` section) that returns a `nemo_rl.protocols.LossFunction`, i.e. a callable
`loss_fn(logprobs, batch, global_valid_tokens, global_valid_seqs) -> (loss, metrics)`. A class
whose constructor takes the config is the usual shape. It is looked up in the `policy_losses`
plugin group, so a package adds one with an entry point
(`[project.entry-points."nemo_rl.policy_losses"] my_loss = "pkg.module:MyLoss"`) and a script with
`@nemo_rl.registry.register("policy_losses", "my_loss")`; its own settings go under
`loss.options`. Shipped: `clipped_pg` (`ClippedPGLoss`: PPO-style clipping with the DAPO,
Dr.GRPO, GSPO and CISPO variants as settings of the `loss` section).

The trainer leaves `prev_logprobs` out of the batch (`reuse_training_logprobs`, one optimizer
update per rollout) only for a loss whose class sets `supports_training_logprob_reuse = True`:
such a loss must read a batch without them as prev_logprobs = logprobs.detach(), as
`ClippedPGLoss` does. Any other loss always gets `prev_logprobs`.

Example:
    >>> from nemo_rl import registry
    >>> from nemo_rl.algorithms.grpo import GRPOLossConfig
    >>> @registry.register("policy_losses", "scaled_pg")
    ... class ScaledPG:
    ...     def __init__(self, config):
    ...         self.scale = config.options.get("scale", 1.0)
    ...     def __call__(self, logprobs, batch, global_valid_tokens, global_valid_seqs):
    ...         mask = batch["token_mask"] * batch["sample_mask"].unsqueeze(-1)
    ...         adv = batch["advantages"].unsqueeze(-1)
    ...         loss = -(self.scale * adv * logprobs * mask).sum() / global_valid_tokens
    ...         return loss, {"loss": loss.detach()}
    >>> build_policy_loss(GRPOLossConfig(name="scaled_pg", options={"scale": 2.0})).scale
    2.0
    >>> registry.unregister("policy_losses", "scaled_pg")
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from nemo_rl import registry
from nemo_rl.config import ConfigError

if TYPE_CHECKING:
    from nemo_rl.algorithms.grpo.config import GRPOConfig, GRPOLossConfig
    from nemo_rl.protocols import LossFunction

PolicyLossFactory = Callable[["GRPOLossConfig"], "LossFunction"]


def build_policy_loss(config: GRPOLossConfig) -> LossFunction:
    """The loss function `config.name` names, built from `config`; a name no installed package
    or in-process registration provides is a `ConfigError` naming `loss.name` and close names.

    Example:
        >>> from nemo_rl.algorithms.grpo import GRPOLossConfig
        >>> type(build_policy_loss(GRPOLossConfig())).__name__
        'ClippedPGLoss'
        >>> build_policy_loss(GRPOLossConfig(name="clipped_p"))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        nemo_rl.config.errors.ConfigError: invalid config: loss.name='clipped_p': policy loss 'clipped_p' is not registered; did you mean 'clipped_pg'? ...
    """
    try:
        factory = registry.resolve("policy_losses", config.name)
    except registry.PluginNotFoundError as err:
        raise ConfigError(f"loss.name={config.name!r}: {err}") from None
    return factory(config)


def reuses_training_logprobs(config: GRPOConfig, loss_fn: LossFunction) -> bool:
    """Whether GRPO steps skip the prev_logprobs pass (`config.reuse_training_logprobs`).

    auto: exactly when each rollout gets one optimizer update and `loss_fn` declares
    `supports_training_logprob_reuse`; true: on (the config already refuses more than one
    update; a loss without support is a `ConfigError` naming `loss.name`); false: off.

    Example:
        >>> from nemo_rl.algorithms.grpo import GRPOConfig
        >>> cfg = GRPOConfig()
        >>> reuses_training_logprobs(cfg, build_policy_loss(cfg.loss))
        True
        >>> cfg = GRPOConfig(epochs_per_rollout=2)
        >>> reuses_training_logprobs(cfg, build_policy_loss(cfg.loss))
        False
    """
    supported = bool(getattr(loss_fn, "supports_training_logprob_reuse", False))
    setting = config.reuse_training_logprobs
    if setting is True and not supported:
        raise ConfigError(
            f"reuse_training_logprobs=true: the policy loss {config.loss.name!r} does not "
            "declare supports_training_logprob_reuse, so it may read batch['prev_logprobs']; set "
            "reuse_training_logprobs to auto or false, or give a loss that reads a batch without "
            "prev_logprobs as logprobs.detach() the class attribute "
            "supports_training_logprob_reuse = True"
        )
    if setting == "auto":
        return supported and config.updates_per_rollout == 1
    return bool(setting)
