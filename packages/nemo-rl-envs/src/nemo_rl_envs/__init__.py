"""Environments and rewards for nemo-rl: math, exact match, sandboxed code execution, reward
models, LLM judges, a multi-turn game.

Every reward here is a plain callable `fn(prompt, response, **row) -> float`, so it can be passed
straight to a trainer; the `*Environment` classes wrap them (or, for games, implement the
multi-turn `step` protocol) and are registered under the `nemo_rl.environments` entry points.

Example:
    >>> import nemo_rl_envs
    >>> nemo_rl_envs.math_reward("1/2 = ?", "\\\\boxed{0.5}", answer="\\\\frac{1}{2}")
    1.0
"""

from __future__ import annotations

from nemo_rl_envs.answer_extraction import (
    answer_after_marker,
    extract_code_block,
    final_answer,
    last_boxed,
    last_number,
)
from nemo_rl_envs.code_execution import (
    CodeExecutionEnvironment,
    TestReport,
    code_reward,
    make_code_reward,
    run_python_tests,
)
from nemo_rl_envs.exact_match import exact_match_reward, make_exact_match_reward, normalize_answer
from nemo_rl_envs.guess_number import GuessNumberEnvironment
from nemo_rl_envs.llm_judge import LLMJudge, LLMJudgeEnvironment
from nemo_rl_envs.math_reward import (
    GroundTruthError,
    MathEnvironment,
    is_equivalent,
    math_reward,
    no_answer,
)
from nemo_rl_envs.reward_model import RewardModelEnvironment, RewardModelScorer
from nemo_rl_envs.sandbox import Sandbox, SandboxUnavailableError

__all__ = [
    "CodeExecutionEnvironment",
    "GroundTruthError",
    "GuessNumberEnvironment",
    "LLMJudge",
    "LLMJudgeEnvironment",
    "MathEnvironment",
    "RewardModelEnvironment",
    "RewardModelScorer",
    "Sandbox",
    "SandboxUnavailableError",
    "TestReport",
    "answer_after_marker",
    "code_reward",
    "exact_match_reward",
    "extract_code_block",
    "final_answer",
    "is_equivalent",
    "last_boxed",
    "last_number",
    "make_code_reward",
    "make_exact_match_reward",
    "math_reward",
    "no_answer",
    "normalize_answer",
    "run_python_tests",
]
