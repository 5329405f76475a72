"""Environments: callable rewards wrapped as environments, and the pool that runs them.

Example:
    >>> from nemo_rl.environments import as_environment
    >>> env = as_environment(lambda prompt, response: float(response == "4"))
    >>> convo = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]
    >>> env.step([convo], [{}]).total_reward().tolist()
    [1.0]
"""

from __future__ import annotations

from nemo_rl.environments.callable_reward import RewardEnvironment, as_environment
from nemo_rl.environments.env_step import RewardEnvStep, check_env_step, merge_env_steps
from nemo_rl.environments.pool import EnvironmentPool, EnvironmentTimeoutError
from nemo_rl.environments.reward_errors import RewardFunctionError
from nemo_rl.environments.reward_signature import batched_reward, describe_reward_fn

__all__ = [
    "EnvironmentPool",
    "EnvironmentTimeoutError",
    "RewardEnvStep",
    "RewardEnvironment",
    "RewardFunctionError",
    "as_environment",
    "batched_reward",
    "check_env_step",
    "describe_reward_fn",
    "merge_env_steps",
]
