"""The models that ship inside the package (`retrosearch/assets/toy/<name>/`), found by name."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

#: Names of the models that ship with the package.
MODEL_NAMES: tuple[str, ...] = ("toy-base", "toy-small", "toy-searcher-base")


def model_path(name: str = "toy-base") -> Path:
    """Folder of a shipped model (config, weights, tokenizer), loadable with `from_pretrained`.

    Args:
        name: One of `MODEL_NAMES`, e.g. `"toy-base"` (~2 M parameters) or `"toy-small"` (the weaker reviser for
            weak-to-strong).
    """
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown toy model {name!r}; expected one of {MODEL_NAMES}")
    path = Path(str(resources.files("retrosearch") / "assets" / "toy" / name))
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"shipped model {name!r} is missing at {path}; rebuild it with scripts/train_toy_model.py --name {name}"
        )
    return path
