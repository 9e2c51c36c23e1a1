"""Traces whose right revision is known, and the scripted models that revise them (shared by tests)."""

import random

OVERTHINKING = (
    "<think>\nWe need 6 * 7.\n\n6 * 7 = 42.\n\n"
    "Wait, let me double-check. 7 * 6 = 42. Yes.\n\n"
    "Hmm, also 6+6+6+6+6+6+6 = 42.\n</think>\n\nThe answer is \\boxed{42}."
)
# The model's first choice after "6 * 7 = 42." is to doubt it; with "Wait" banned it closes its thinking.
OVERTHINKING_MODEL = {
    "6 * 7 = 42.": [
        " Wait, let me double-check. 7 * 6 = 42. Yes.",
        "\n</think>\n\nThe answer is \\boxed{42}.",
    ],
    "</think>\n\n": "The answer is \\boxed{42}.",
}

UNDERTHINKING = (
    "<think>\nCompute 12 * 11.\n\nUse 12 * 10 = 120, then add 12.\n\n"
    "Alternatively, multiply digit by digit: 11 * 12 = 11 * 2 + 11 * 10.\n\n"
    "That gives 22 + 110 = 132.\n\nWait, let me verify: 132 / 12 = 11. Yes.\n</think>\n\n\\boxed{132}"
)
# After "then add 12." the model would have switched; banned from it, it finishes the line it was on.
UNDERTHINKING_MODEL = {
    "then add 12.": "\n\nAlternatively, multiply digit by digit.",
    "then add 12.\n\n": ["Alternatively, multiply digit by digit.", "120 + 12 = 132.\n\nSo it is 132."],
    "120 + 12 = 132.\n\n": "So it is 132.\n</think>\n\n\\boxed{132}",
    "22 + 110 = 132.": "\n\nThat is wrong, it is 133.",
    "22 + 110 = 132.\n\n": "That is wrong, it is 133.\n</think>\n\n\\boxed{133}",
}

# Two revisions at the same switch: the first kept rollout finishes the abandoned line but itself switches
# ("Wait, check 5."), so the search tries the end of the (now longer) first thought again, inside the kept
# rollout (splitting its node), and cuts the re-check.
TWICE = (
    "<think>\nAdd two and three.\n\nTwo plus three makes the sum we want.\n\n"
    "Wait, let me count it on fingers one by one to be sure of it.\n\nThe fingers also say the same thing.\n\n"
    "Hmm, and counting back from the total gives the first number again.\n\nSo that is fine too."
    "\n</think>\n\nThe answer is \\boxed{5}."
)
TWICE_MODEL = {
    "makes the sum we want.": "\n\n",
    "makes the sum we want.\n\n": "So it is 5.\n\nWait, check 5.\n</think>\n\nThe answer is \\boxed{5}.",
    "So it is 5.\n\n": "Wait, check 5.\n</think>\n\nThe answer is \\boxed{5}.",
    "So it is 5.": "\n</think>\n\nThe answer is \\boxed{5}.",
    "</think>\n\n": "The answer is \\boxed{5}.",
}


_WORDS = ["so", "x", "is", "add", "two", "then", "ok", "yes", "we", "get"]


def _step(rng):
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 6))) + "."


def random_case(case):
    """`(trace, gold, model)`: a random trace with switches, and a model whose 3 candidate rollouts may switch
    again and are right 70% of the time (several revisions per trace and split nodes both occur)."""
    rng = random.Random(case)
    ans = rng.randint(0, 99)
    openers = ["Wait, ", "Hmm, ", "Alternatively, ", ""]
    steps = [_step(rng)] + [rng.choice(openers) + _step(rng) for _ in range(rng.randint(1, 9))]
    trace = "<think>\n" + "\n\n".join(steps) + f"\n</think>\n\n\\boxed{{{ans}}}"

    def model(prompt, ctx):
        outs = []
        for _ in range(3):
            body = "".join(
                "\n\n" + ctx.rng.choice(["Wait, ", "", "Hmm, "]) + _step(ctx.rng)
                for _ in range(ctx.rng.randint(0, 3))
            )
            outs.append(body + f"\n</think>\n\n\\boxed{{{ans if ctx.rng.random() < 0.7 else ans + 1}}}")
        # After a blank line a model writes its next step, not another blank line.
        return [o[2:] if prompt.endswith("\n\n") and o.startswith("\n\n") else o for o in outs]

    return trace, str(ans), model
