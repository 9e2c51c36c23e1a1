"""A simulated world for benchmarks: synthetic R1-style traces and a scripted model that continues them."""

from __future__ import annotations

import random
import re

from retrosearch.backends import ScriptedBackend

WORDS = [
    "so",
    "we",
    "add",
    "the",
    "two",
    "parts",
    "then",
    "check",
    "it",
    "again",
    "and",
    "carry",
    "one",
    "to",
    "get",
    "a",
    "value",
    "of",
]
SWITCHES = ["Wait, ", "Alternatively, ", "Hmm, ", "But wait, "]


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def make_traces(n: int, seed: int = 0) -> list[dict]:
    """`n` correct traces of 2-7 thoughts (2-4 steps each) that state the answer in their last step."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        answer = rng.randint(10, 999)
        thoughts = []
        for t in range(rng.randint(2, 7)):
            steps = [_sentence(rng, rng.randint(6, 16)) for _ in range(rng.randint(2, 4))]
            if t:
                steps[0] = rng.choice(SWITCHES) + steps[0][0].lower() + steps[0][1:]
            thoughts.append("\n\n".join(steps))
        thoughts[-1] += f" The value is {answer}."
        response = "<think>\n" + "\n\n".join(thoughts) + f"\n</think>\n\nThe answer is \\boxed{{{answer}}}."
        rows.append(
            {
                "question": f"Problem {i}: find the value (ANSWER={answer}).",
                "response": response,
                "gold": str(answer),
            }
        )
    return rows


def world_model(p_close: float = 0.25, p_short: float = 0.25, p_wrong: float = 0.2):
    """The script: from any prefix, close now, finish in 1-2 steps, or ramble for 5-30 long steps.

    The long tail of rambling mimics R1 rollouts that re-explore from scratch (they often run to the token
    cap); a remainder, by contrast, is a few thoughts of a few steps.
    """

    def script(prompt: str, ctx) -> str:
        answer = int(re.search(r"ANSWER=(\d+)", prompt).group(1))
        rng = ctx.rng
        lead = "" if prompt.endswith("\n\n") else "\n\n"
        u = rng.random()
        if u < p_close:
            steps: list[str] = []
        elif u < p_close + p_short:
            steps = [_sentence(rng, rng.randint(6, 14)) for _ in range(rng.randint(1, 2))]
        else:
            steps = [_sentence(rng, rng.randint(15, 30)) for _ in range(rng.randint(5, 30))]
        got = answer if rng.random() >= p_wrong else answer + 1
        body = lead + "\n\n".join(steps) if steps else ""
        return body + f"\n</think>\n\nThe answer is \\boxed{{{got}}}."

    return script


def world_backend(latency_s: float = 0.0, latency_per_token_s: float = 0.0, **kw) -> ScriptedBackend:
    return ScriptedBackend(world_model(**kw), latency_s=latency_s, latency_per_token_s=latency_per_token_s)
