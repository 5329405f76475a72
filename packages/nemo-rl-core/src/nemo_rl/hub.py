"""Local paths first, then a fast check that the Hugging Face hub answers, before a model,
tokenizer or dataset name is handed to transformers or datasets.

Without it, a mistyped local path reads "Repo id must be in the form 'namespace/repo_name'", and
a hub name on a machine without network takes a minute or two of retries (each warning printed
twice) before the error. Here a path-like name that does not exist says "no such directory", and
an unreachable hub is found with one request (3 s at most) and reported in one line that says how
to use a local copy. A name already in the HF cache loads from it with no network at all.

Only the standard library is imported at module level (the CLI imports this without torch).

Example:
    >>> looks_like_path("./models/tiny"), looks_like_path("Qwen/Qwen2.5-0.5B")
    (True, False)
    >>> try:
    ...     pretrained_kwargs("/no/such/model", "policy.model_name")
    ... except FileNotFoundError as err:
    ...     print(str(err).split(" (")[0])
    policy.model_name='/no/such/model': no such directory
"""

from __future__ import annotations

import functools
import os
import ssl
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

DEFAULT_ENDPOINT = "https://huggingface.co"
PROBE_TIMEOUT_S = 3.0
_TRUE = {"1", "true", "yes", "on"}
# Files a cached model or tokenizer repository has at least one of.
_CACHE_MARKERS = ("config.json", "tokenizer_config.json")


class HubUnreachableError(ConnectionError):
    """A hub name was asked for and the Hugging Face hub does not answer from this machine.

    Example:
        >>> issubclass(HubUnreachableError, OSError)
        True
    """


def looks_like_path(name: str) -> bool:
    """Whether `name` can only be a local path: it starts like one (`/`, `./`, `../`, `~`), has a
    backslash, or more parts than a hub id (`namespace/name`).

    Example:
        >>> [looks_like_path(n) for n in ("/m", "~/m", "a/b/c", "gpt2", "org/model")]
        [True, True, True, False, False]
    """
    return (
        name.startswith(("/", "./", "../", "~", ".\\", "..\\"))
        or "\\" in name
        or name.count("/") > 1
        or name in (".", "..")
    )


def hub_endpoint() -> str:
    """The hub URL transformers and datasets use (`HF_ENDPOINT`, else huggingface.co).

    Example:
        >>> hub_endpoint().startswith("http")
        True
    """
    return os.environ.get("HF_ENDPOINT", "").strip().rstrip("/") or DEFAULT_ENDPOINT


def hub_offline() -> bool:
    """Whether the user asked for no network (`HF_HUB_OFFLINE` or `TRANSFORMERS_OFFLINE`).

    Example:
        >>> isinstance(hub_offline(), bool)
        True
    """
    return any(
        os.environ.get(var, "").strip().lower() in _TRUE
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")
    )


@functools.lru_cache(maxsize=8)
def hub_reachable(endpoint: str | None = None, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether the hub answers one HEAD request within `timeout` seconds (cached per process).

    Any HTTP answer, even an error status or a TLS complaint, counts as reachable: only "nobody
    answered" (DNS, refused, timeout) is worth stopping for. The request runs in a thread so
    that a hanging DNS lookup, which the socket timeout does not cover, cannot hold the run.

    Example:
        >>> hub_reachable("http://127.0.0.1:9")  # nothing listens on the discard port
        False
    """
    url = endpoint or hub_endpoint()
    answer: list[bool] = []

    def probe() -> None:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
                answer.append(True)
        except urllib.error.HTTPError:
            answer.append(True)
        except urllib.error.URLError as err:
            answer.append(isinstance(err.reason, ssl.SSLError))
        except (OSError, ValueError):
            answer.append(False)

    thread = threading.Thread(target=probe, name="nemo-rl-hub-probe", daemon=True)
    thread.start()
    thread.join(timeout + 1.0)
    return bool(answer and answer[0])


def in_hub_cache(name: str, markers: tuple[str, ...] = _CACHE_MARKERS) -> bool:
    """Whether the HF cache holds a snapshot of repository `name` (one of `markers`).

    Example:
        >>> in_hub_cache("surely-not/a-cached-repo")
        False
    """
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    for marker in markers:
        try:
            if isinstance(try_to_load_from_cache(name, marker), str):
                return True
        except Exception:  # a malformed id or cache: "not cached" is the right answer
            return False
    return False


def unreachable_message(name: str, setting: str, what: str = "model") -> str:
    """The one line for a hub name that cannot be fetched from this machine.

    Example:
        >>> "HF_HUB_OFFLINE=1" in unreachable_message("org/m", "policy.model_name")
        True
    """
    if what == "model":
        fetch = f"hf download {name} --local-dir DIR"
        cache = "it is not in the HF cache either"  # a cached model would have been used
        fallback = "(or fill the HF cache and set HF_HUB_OFFLINE=1)"
    else:
        fetch = f"hf download {name} --repo-type dataset --local-dir DIR"
        cache = "nothing was fetched"
        fallback = "(or, if it is in the HF cache already, set HF_HUB_OFFLINE=1)"
    return (
        f"{setting}={name!r} is not a local path (cwd: {Path.cwd()}) and the Hugging Face hub "
        f"({hub_endpoint()}) cannot be reached from this machine; {cache}: copy the {what} here "
        f"(`{fetch}` where there is network) and set {setting}=DIR {fallback}"
    )


def missing_path_message(name: str, setting: str, what: str = "directory") -> str:
    """The one line for a path-like name that does not exist.

    Example:
        >>> missing_path_message("./m", "policy.model_name").split(" (")[0]
        "policy.model_name='./m': no such directory"
    """
    return f"{setting}={name!r}: no such {what} (cwd: {Path.cwd()}); check the path"


def check_hub_name(name: str, setting: str, what: str = "model") -> str:
    """Where `name` will load from: "local", "offline" (the user's HF_HUB_OFFLINE), "hub" or
    "cache" (hub unreachable, found in the HF cache); raises one-line errors otherwise.

    Example:
        >>> check_hub_name(".", "policy.model_name")
        'local'
    """
    path = Path(name).expanduser()
    if path.exists():
        return "local"
    if looks_like_path(name):
        raise FileNotFoundError(missing_path_message(name, setting))
    if hub_offline():
        if what == "model" and not in_hub_cache(name):
            raise FileNotFoundError(
                f"{setting}={name!r} is not a local path (cwd: {Path.cwd()}) and not in the HF "
                f"cache, and HF_HUB_OFFLINE is set: give a local model directory"
            )
        return "offline"
    if hub_reachable():
        return "hub"
    if what == "model" and in_hub_cache(name):
        return "cache"
    raise HubUnreachableError(unreachable_message(name, setting, what))


def pretrained_kwargs(name: str, setting: str) -> dict[str, Any]:
    """Extra `from_pretrained` arguments for `name` after `check_hub_name`: a cached copy with the
    hub unreachable loads with `local_files_only=True` (no retries).

    Example:
        >>> pretrained_kwargs(".", "policy.model_name")
        {}
    """
    where = check_hub_name(name, setting)
    if where == "local" and not Path(name).expanduser().is_dir():
        raise FileNotFoundError(
            f"{setting}={name!r} is a file, not a model directory (config.json + weights)"
        )
    return {"local_files_only": True} if where == "cache" else {}
