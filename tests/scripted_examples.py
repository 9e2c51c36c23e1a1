"""Traces whose right revision is known, and the scripted models that revise them (shared by tests)."""

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
