"""Where a model lives (a folder, a shipped model's name, a hub id), found at once or refused in one line."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from retrosearch.assets import MODEL_NAMES
from retrosearch.backends.registry import resolve_model

#: What a hub id looks like: `name` or `namespace/name` (letters, digits, `-`, `_`, `.`).
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")


def locate_model(name: str | os.PathLike[str], *, what: str = "model") -> tuple[str, dict[str, Any]]:
    """Find `name` before anything heavy loads: a local folder, a shipped model (`toy-base`), or a hub id.

    A name that reads as a path (`./m`, `runs/x/y`, `/abs`) and does not exist fails at once, as does a hub id
    that the hub does not know or cannot be asked about while it is not in the local cache; loading it would
    otherwise retry the hub for half a minute before failing.

    Args:
        name: As given on the command line or to a backend.
        what: How the message names it (`"model"`, `"tokenizer"`).

    Returns:
        `(source, load_kwargs)`: what to hand `from_pretrained`, and keywords for it (`local_files_only` when the
        hub is offline or unreachable and the cache has the model).

    Raises:
        FileNotFoundError: the model is nowhere to be found (the one-line message says where it looked).
    """
    text = str(name)
    source = resolve_model(text)
    if Path(source).exists():
        return source, {}
    shipped = ", ".join(MODEL_NAMES)
    if isinstance(name, os.PathLike) or not _HUB_ID.fullmatch(text) or _starts_in_existing_folder(text):
        raise FileNotFoundError(
            f"{what} folder {text!r} does not exist (nor is it a shipped model: {shipped})"
        )
    cached = _in_cache(text)
    if _truthy(os.environ.get("HF_HUB_OFFLINE")):
        if cached:
            return text, {"local_files_only": True}
        raise FileNotFoundError(
            f"{what} {text!r} is not a local folder, a shipped model ({shipped}) or in the hub cache "
            "(HF_HUB_OFFLINE is set)"
        )
    verdict, detail = _ask_hub(text)
    if verdict == "missing":
        raise FileNotFoundError(
            f"{what} {text!r} is not a local folder, a shipped model ({shipped}) or a model on the hub"
        )
    if verdict == "unreachable":
        if cached:
            return text, {"local_files_only": True}
        raise FileNotFoundError(
            f"{what} {text!r} is not a local folder or a shipped model ({shipped}), and the hub cannot be "
            f"reached to fetch it ({detail})"
        )
    return text, {}


def _starts_in_existing_folder(text: str) -> bool:
    # `runs/model` where `runs/` exists is a local path with a typo, not a hub id.
    head = text.split("/", 1)[0]
    return "/" in text and Path(head).is_dir()


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _in_cache(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except Exception:  # an odd cache layout is no reason to refuse a model
        return False


def _ask_hub(repo_id: str, timeout_s: float = 10.0) -> tuple[str, str]:
    """One question to the hub, no retries: `("found" | "missing" | "unreachable" | "unknown", detail)`."""
    try:
        from huggingface_hub import model_info
        from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError
    except ImportError as e:
        return "unknown", str(e)
    try:
        model_info(repo_id, timeout=timeout_s)
    except GatedRepoError:
        return "found", "gated"
    except RepositoryNotFoundError:
        return "missing", "not on the hub"
    except HfHubHTTPError as e:  # rate limits, 5xx: the loader's own retries may still succeed
        return "unknown", str(e).splitlines()[0] if str(e) else type(e).__name__
    except Exception as e:  # DNS failures, refused connections, timeouts
        return "unreachable", (str(e).splitlines() or [type(e).__name__])[0]
    return "found", ""
