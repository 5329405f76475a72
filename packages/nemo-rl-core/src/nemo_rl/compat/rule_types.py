"""The vocabulary of migration rules: what an old key becomes, or why it is dropped.

A `Rule` matches one legacy dotted key (`loss_fn.ratio_clip_min`) or a whole section
(`policy.megatron_cfg.*`). It names the new key (with `{rest}` standing for the part the `*`
matched), may convert the value, and may not apply to a run (a Megatron option on a DTensor run),
in which case the key is dropped with the reason the rule gives.

Example:
    >>> rule = Rule("loss_fn.reference_policy_kl_penalty", "loss.kl_penalty")
    >>> rule.target("loss_fn.reference_policy_kl_penalty")
    'loss.kl_penalty'
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Drop:
    """A legacy value that has no place in the new config, with the reason shown to the user.

    `changes_behaviour` marks a value the run would have used (a feature switched on): it is also
    reported as a warning, because the migrated run will behave differently.
    """

    reason: str
    changes_behaviour: bool = False


@dataclass
class MigrationContext:
    """What rules may look at: the algorithm, the chosen backends and every resolved legacy value."""

    algorithm: str
    training_backend: str
    generation_backend: str | None
    legacy: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    key: str = ""  # the legacy key being converted, for section rules

    def get(self, key: str, default: Any = None) -> Any:
        """A resolved legacy value by dotted key (leaf or section), or `default`."""
        if key in self.legacy:
            return self.legacy[key]
        prefix = key + "."
        section = {k[len(prefix) :]: v for k, v in self.legacy.items() if k.startswith(prefix)}
        return section or default


Converter = Callable[[Any, MigrationContext], Any]
Condition = Callable[[MigrationContext], "str | None"]


@dataclass(frozen=True)
class Rule:
    """How one legacy key (or, with a trailing `.*`, a section) migrates.

    `new` None drops the key with `note` as the reason. `convert(value, ctx)` returns the new value
    or a `Drop`. `when(ctx)` returns None when the rule applies, else the reason to drop the key.
    Among several old keys landing in one new key with different values, the highest `priority`
    wins and the others are reported as superseded.
    """

    old: str
    new: str | None
    note: str = ""
    convert: Converter | None = None
    when: Condition | None = None
    priority: int = 0

    @property
    def is_section(self) -> bool:
        return self.old.endswith(".*")

    def matches(self, key: str) -> bool:
        if self.is_section:
            return key.startswith(self.old[:-1])
        return key == self.old

    def target(self, key: str) -> str | None:
        """The new dotted key for legacy `key` (which this rule matches)."""
        if self.new is None:
            return None
        rest = key[len(self.old) - 1 :] if self.is_section else ""
        return self.new.replace("{rest}", rest)

    def apply(self, key: str, value: Any, ctx: MigrationContext) -> tuple[str, Any] | Drop:
        """(new key, new value), or a `Drop` with the reason."""
        ctx.key = key
        if self.when is not None:
            reason = self.when(ctx)
            if reason is not None:
                return Drop(reason)
        new_value = self.convert(value, ctx) if self.convert else value
        if isinstance(new_value, Drop):
            return new_value
        if self.new is None:
            return Drop(self.note or "no equivalent in nemo-rl")
        return self.target(key), new_value  # type: ignore[return-value]


def same(*keys: str) -> list[Rule]:
    """Rules for keys whose dotted name and meaning did not change."""
    return [Rule(key, key) for key in keys]


def dropped(reason: str, *keys: str) -> list[Rule]:
    """Rules dropping `keys` (exact keys or `section.*`) with one reason."""
    return [Rule(key, None, reason) for key in keys]


def unsupported(key: str, feature: str, neutral: Iterable[Any] = (None, False)) -> Rule:
    """A NeMo RL feature nemo-rl lacks: dropped quietly at a `neutral` (off) value, dropped with a
    warning otherwise."""
    neutral_values = list(neutral)

    def convert(value: Any, ctx: MigrationContext) -> Drop:
        if any(same_value(value, n) for n in neutral_values):
            return Drop(f"{feature} is off ({value!r}); nemo-rl does not implement it")
        return Drop(
            f"{feature} is not implemented in nemo-rl; the legacy value {value!r} is ignored and "
            "the run behaves as if it were off",
            changes_behaviour=True,
        )

    return Rule(key, None, f"{feature} is not implemented in nemo-rl", convert)


def same_value(a: Any, b: Any) -> bool:
    """Equality that keeps booleans apart from numbers (`False` is not `0` here)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return a == b


def only_if(key: str, expected: Any, reason: str) -> Condition:
    """A condition: the rule applies only when legacy `key` equals `expected`."""

    def condition(ctx: MigrationContext) -> str | None:
        return None if ctx.get(key) == expected else reason

    return condition
