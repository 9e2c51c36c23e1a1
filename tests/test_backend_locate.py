"""Finding a model before anything loads: folders, shipped names, hub ids; a missing one fails at once, in one line."""

from __future__ import annotations

import pytest

from retrosearch.assets import model_path
from retrosearch.backends import locate
from retrosearch.backends.locate import locate_model


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """A fake hub: what it answers (`verdict`), what the cache holds (`cached`) and how often it was asked."""
    state: dict[str, object] = {"verdict": ("found", ""), "cached": False, "asked": 0}

    def ask(repo_id: str, timeout_s: float = 10.0) -> tuple[str, str]:
        state["asked"] = int(state["asked"]) + 1  # type: ignore[call-overload]
        return state["verdict"]  # type: ignore[return-value]

    monkeypatch.setattr(locate, "_ask_hub", ask)
    monkeypatch.setattr(locate, "_in_cache", lambda repo_id: state["cached"])
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return state


def test_shipped_names_and_existing_folders_resolve_without_the_hub(hub: dict, tmp_path) -> None:
    assert locate_model("toy-base") == (str(model_path("toy-base")), {})
    assert locate_model(str(tmp_path)) == (str(tmp_path), {})
    assert locate_model(tmp_path) == (str(tmp_path), {})
    assert hub["asked"] == 0


@pytest.mark.parametrize("name", ["./nope_dir", "nope_dir/sub/model", "/abs/missing", "~/models/x", "a b"])
def test_a_missing_local_path_fails_at_once(hub: dict, name: str) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist") as e:
        locate_model(name)
    assert "\n" not in str(e.value) and "toy-base" in str(e.value)
    assert hub["asked"] == 0


def test_a_hub_like_name_under_an_existing_folder_is_a_local_typo(hub: dict, tmp_path, monkeypatch) -> None:
    (tmp_path / "runs").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        locate_model("runs/model")
    assert hub["asked"] == 0


def test_a_hub_id_is_asked_about_once(hub: dict) -> None:
    assert locate_model("org/model") == ("org/model", {})
    assert hub["asked"] == 1
    hub["verdict"] = ("missing", "")
    with pytest.raises(
        FileNotFoundError, match="not a local folder, a shipped model .* or a model on the hub"
    ):
        locate_model("no-such-model", what="tokenizer")
    hub["verdict"] = ("unknown", "HTTP 503")  # the loader's own retries may still succeed
    assert locate_model("org/model") == ("org/model", {})


def test_an_unreachable_hub_uses_the_cache_or_fails_in_one_line(hub: dict) -> None:
    hub["verdict"] = ("unreachable", "Name or service not known")
    with pytest.raises(FileNotFoundError, match="hub cannot be reached .*Name or service not known") as e:
        locate_model("no-such-model")
    assert "\n" not in str(e.value)
    hub["cached"] = True
    assert locate_model("org/cached") == ("org/cached", {"local_files_only": True})


def test_offline_mode_never_asks_the_hub(hub: dict, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="HF_HUB_OFFLINE"):
        locate_model("org/model")
    hub["cached"] = True
    assert locate_model("org/model") == ("org/model", {"local_files_only": True})
    assert hub["asked"] == 0
