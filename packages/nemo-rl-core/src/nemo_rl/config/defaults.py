"""The `defaults:` key: which parent files a config names, checked the same way for every loader.

Both the nemo-rl loader and the legacy NeMo RL loader (and the legacy-layout detection, which
looks at parents before either loader runs) walk `defaults:` chains; they share these checks, so a
chain that is not a list of paths, names a missing file or comes back to a file already in the
chain is one `ConfigError` naming the file and the fix, never a TypeError or a RecursionError.

Example:
    >>> from pathlib import Path
    >>> defaults_list("base.yaml", "run.yaml")
    ['base.yaml']
    >>> try:
    ...     defaults_list(5, "run.yaml")
    ... except ConfigError as err:
    ...     print(err.problems[0])
    run.yaml: defaults = 5: expected a path or a list of paths to parent config files, e.g. 'defaults: base.yaml'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nemo_rl.config.errors import ConfigError


def defaults_list(parents: Any, where: str | Path | None) -> list[str]:
    """`defaults:` as a list of paths (one path may be written alone); `where` names the file
    (None when the error will be attributed to the file by the caller).

    Example:
        >>> defaults_list(["a.yaml", "b.yaml"], "run.yaml"), defaults_list(None, "run.yaml")
        (['a.yaml', 'b.yaml'], [])
    """
    if parents is None:
        return []
    if isinstance(parents, str):
        parents = [parents]
    if not isinstance(parents, list) or not all(isinstance(p, str) and p for p in parents):
        shown = repr(parents) if len(repr(parents)) <= 80 else repr(parents)[:77] + "..."
        raise ConfigError(
            f"{f'{where}: ' if where else ''}defaults = {shown}: expected a path or a list of paths to parent config "
            "files, e.g. 'defaults: base.yaml'"
        )
    return list(parents)


def parent_path(parent: str, base_dir: Path, chain: list[Path]) -> Path:
    """The resolved file a `defaults:` entry names; `chain` holds the files that led here.

    Raises `ConfigError` when the file does not exist or is already in the chain (a cycle).

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp()); _ = (d / "a.yaml").write_text("defaults: a.yaml")
        >>> try:
        ...     parent_path("a.yaml", d, [d / "a.yaml"])
        ... except ConfigError as err:
        ...     print(err.problems[0])
        defaults form a cycle (a.yaml -> a.yaml): remove one of these links
    """
    path = (base_dir / parent).resolve()
    if path in [p.resolve() for p in chain]:
        cycle = " -> ".join(p.name for p in [*chain, path])
        raise ConfigError(f"defaults form a cycle ({cycle}): remove one of these links")
    if not path.is_file():
        named_by = f"'{chain[-1]}'" if chain else "the config"
        raise ConfigError(
            f"{named_by} names default '{parent}', but '{path}' does not exist: fix the path "
            "(defaults are relative to the file that names them)"
        )
    return path
