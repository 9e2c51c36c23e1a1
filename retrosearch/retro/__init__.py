"""Retro-Search: revise reasoning traces by rolling out the untaken path at each thought switch."""

from retrosearch.retro.search import (  # noqa: F401
    PromptFormat,
    RetroSearchConfig,
    Revision,
    RevisionResult,
    revise,
    revise_iter,
    revise_program,
    split_output,
)

__all__ = [
    "PromptFormat",
    "RetroSearchConfig",
    "Revision",
    "RevisionResult",
    "revise",
    "revise_iter",
    "revise_program",
    "split_output",
]
