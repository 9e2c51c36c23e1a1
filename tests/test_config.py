"""Config dataclasses: aliases as flags, YAML keys and keywords; type checks; one-line YAML errors; seeds."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
from dataclasses import dataclass

import pytest

from retrosearch.config import (
    add_arguments,
    check_types,
    derive_seed,
    from_args,
    load_yaml,
    option,
    to_dict,
    with_aliases,
)


@with_aliases
@dataclass
class Sampling:
    """A config whose fields took vLLM's names; the old spellings stay accepted."""

    n: int = option(4, "Samples per prompt.", aliases=("n_rollouts",))
    max_tokens: int = option(64, "Most new tokens.", aliases=("max_new_tokens",))
    temperature: float = option(0.6, "Sampling temperature.")
    words: tuple[str, ...] = option(("Wait",), "Switch words.")
    note: str | None = option(None, "Free text.")


def parse(argv: list[str]) -> Sampling:
    p = argparse.ArgumentParser()
    add_arguments(p, Sampling)
    return from_args(Sampling, p.parse_args(argv))


# --------------------------------------------------------------------------- aliases
def test_an_alias_is_a_constructor_keyword_and_an_attribute():
    cfg = Sampling(n_rollouts=8, max_new_tokens=16)
    assert (cfg.n, cfg.max_tokens) == (8, 16)
    assert cfg.n_rollouts == 8
    cfg.n_rollouts = 2
    assert cfg.n == 2
    # The canonical names are the fields: that is what is saved.
    assert to_dict(cfg)["n"] == 2 and "n_rollouts" not in to_dict(cfg)
    assert dataclasses.replace(cfg, n=3).n == 3


def test_both_spellings_with_different_values_are_refused():
    with pytest.raises(TypeError, match="both n=2 and its other name n_rollouts=3"):
        Sampling(n=2, n_rollouts=3)
    assert Sampling(n=2, n_rollouts=2).n == 2


def test_an_alias_is_a_flag():
    assert parse(["--n-rollouts", "7"]).n == 7
    assert parse(["--n", "5", "--max-new-tokens", "9"]).max_tokens == 9
    assert parse([]) == Sampling()


def test_an_alias_is_a_yaml_key(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("n_rollouts: 6\nmax_tokens: 10\n")
    assert load_yaml(Sampling, y) == Sampling(n=6, max_tokens=10)
    y.write_text("n_rollouts: 6\nn: 5\n")
    with pytest.raises(ValueError, match="both n=5 and its other name n_rollouts=6"):
        load_yaml(Sampling, y)


def test_an_alias_that_is_also_a_field_is_refused():
    with pytest.raises(TypeError, match="also field names"):

        @with_aliases
        @dataclass
        class Bad:
            a: int = option(1, "a", aliases=("b",))
            b: int = option(2, "b")


# --------------------------------------------------------------------------- types
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('n_rollouts: "four"\n', r"Sampling\.n_rollouts must be an integer, got 'four' \(str\)"),
        ("n: 2.5\n", r"Sampling\.n must be an integer, got 2\.5"),
        ("n: true\n", r"Sampling\.n must be an integer, got True \(bool\)"),
        ("temperature: hot\n", r"Sampling\.temperature must be a number"),
        ("words: [1, 2]\n", r"Sampling\.words must be a list of strings"),
        ("note: [a]\n", r"Sampling\.note must be a string or null"),
    ],
)
def test_a_value_of_the_wrong_type_names_the_field_and_the_type(tmp_path, text, message):
    y = tmp_path / "c.yaml"
    y.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_yaml(Sampling, y)


def test_right_types_pass_and_one_value_stands_for_a_list(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("temperature: 1\nwords: Hmm\nnote: null\n")
    assert load_yaml(Sampling, y) == Sampling(temperature=1, words=("Hmm",))
    check_types(Sampling, {"n": 3, "words": ["a"], "note": "x"})


# --------------------------------------------------------------------------- YAML problems: one line each
@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "no such file"),
        ("n: [1, 2\n", r"line \d+, column \d+: not valid YAML"),
        ("n: !!python/object/apply:os.system ['true']\n", r"line 1: .*no !!python tags"),
        ("- 1\n- 2\n", "expected a mapping of Sampling fields, got list"),
        ("nn: 1\n", r"unknown Sampling field\(s\) \['nn'\]"),
    ],
)
def test_yaml_problems_are_one_line_value_errors(tmp_path, text, message):
    y = tmp_path / "c.yaml"
    if text is not None:
        y.write_text(text)
    with pytest.raises(ValueError, match=message) as e:
        load_yaml(Sampling, y)
    assert "\n" not in str(e.value) and str(y) in str(e.value)


def test_an_empty_yaml_file_gives_the_defaults(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("# nothing set\n")
    assert load_yaml(Sampling, y) == Sampling()


# --------------------------------------------------------------------------- seeds
def test_derive_seed_is_the_hash_of_the_parts():
    expected = int.from_bytes(hashlib.sha256(b"0|math500|p3").digest()[:4], "little")
    assert derive_seed(0, "math500", "p3") == expected
    assert derive_seed(0, 1, 2) != derive_seed(0, 2, 1)
    assert 0 <= derive_seed("x") < 2**32


# --------------------------------------------------------------------------- on the command line
@pytest.mark.parametrize("command", ["revise", "evaluate", "distill"])
@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "no such file"),
        ("seed: [1\n", "not valid YAML"),
        ("seed: !!python/object/apply:os.system ['true']\n", "no !!python tags"),
        ('seed: "four"\n', ".seed must be an integer, got 'four'"),
    ],
)
def test_a_bad_config_file_is_one_line_on_the_command_line(tmp_path, capsys, command, text, message):
    from pathlib import Path

    from retrosearch.cli import main

    root = Path(__file__).resolve().parents[1]
    cfg = tmp_path / "c.yaml"
    if text is not None:
        cfg.write_text(text)
    argv = {
        "revise": ["--input", str(root / "examples" / "traces.jsonl"), "--output", str(tmp_path / "o.jsonl")]
        + ["--backend", "scripted", "--model", str(root / "examples" / "scripted_model.json")],
        "evaluate": ["--backend", "scripted", "--model", "m.json", "--benchmark", "toy"],
        "distill": [],
    }[command]
    with pytest.raises(SystemExit) as e:
        main([command, *argv, "--config", str(cfg)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert message in last and str(cfg) in last
    assert not (tmp_path / "o.jsonl").exists()
