"""Retro-Search: revise reasoning and search traces by rolling out the untaken path at each switch or query."""

from retrosearch.retro.api import revise, revise_iter
from retrosearch.retro.config import PromptFormat, RetroSearchConfig
from retrosearch.retro.program import revise_program
from retrosearch.retro.results import Exploration, Revision, RevisionResult, RolloutRecord
from retrosearch.retro.rollout import split_output
from retrosearch.retro.search_traces import parse_search_trace, search_group_traces

__all__ = [
    "Exploration",
    "PromptFormat",
    "RetroSearchConfig",
    "Revision",
    "RevisionResult",
    "RolloutRecord",
    "revise",
    "revise_iter",
    "parse_search_trace",
    "revise_program",
    "search_group_traces",
    "split_output",
]
