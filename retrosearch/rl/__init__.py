"""Search-augmented RL (R1-Searcher, R1-Searcher++, DeepMMSearch-R1) on the shared engine and tree.

Tag protocols (`protocols`), the search-rollout program (`rollout`), rewards (`rewards`), QA benchmarks, scores
and an LLM judge; the QA evaluation job is `retrosearch.rl.evaluate` (imported on its own: it sits above this
package). Heavy libraries are imported only by the parts that need them.
"""

from retrosearch.rl.benchmarks import QA_BENCHMARKS, QABenchmark, QAExample, load_qa_benchmark
from retrosearch.rl.judge import JUDGE_TEMPLATE, JudgeVerdict, LLMJudge, parse_verdict
from retrosearch.rl.protocols import (
    DEEPMMSEARCH_R1,
    PROTOCOL_NAMES,
    PROTOCOLS,
    R1_SEARCHER,
    R1_SEARCHER_PLUS,
    SEARCH_R1,
    ParsedQuery,
    QueryTag,
    TagProtocol,
    get_protocol,
)
from retrosearch.rl.rewards import (
    FORMAT_RULES,
    FormatCheck,
    Stage1Reward,
    Stage2Reward,
    check_format,
    count_retrievals,
    cover_em,
    em,
    f1,
    stage1_reward,
    stage2_reward,
)
from retrosearch.rl.rollout import (
    FINISH_REASONS,
    MODES,
    SearchGroup,
    SearchRollout,
    SearchRolloutConfig,
    retrieval_tool,
    rollout_fields,
    search_rollout,
)
from retrosearch.rl.scoring import grade, score_file, score_records, summarize

__all__ = [
    "DEEPMMSEARCH_R1",
    "FINISH_REASONS",
    "FORMAT_RULES",
    "JUDGE_TEMPLATE",
    "MODES",
    "PROTOCOLS",
    "PROTOCOL_NAMES",
    "QA_BENCHMARKS",
    "R1_SEARCHER",
    "R1_SEARCHER_PLUS",
    "SEARCH_R1",
    "FormatCheck",
    "JudgeVerdict",
    "LLMJudge",
    "ParsedQuery",
    "QABenchmark",
    "QAExample",
    "QueryTag",
    "SearchGroup",
    "SearchRollout",
    "SearchRolloutConfig",
    "Stage1Reward",
    "Stage2Reward",
    "TagProtocol",
    "check_format",
    "count_retrievals",
    "cover_em",
    "em",
    "f1",
    "get_protocol",
    "grade",
    "load_qa_benchmark",
    "parse_verdict",
    "retrieval_tool",
    "rollout_fields",
    "score_file",
    "score_records",
    "search_rollout",
    "stage1_reward",
    "stage2_reward",
    "summarize",
]
