"""The DPO algorithm: config, loss, data transform and trainer."""

from nemo_rl.algorithms.dpo.config import DPOConfig
from nemo_rl.algorithms.dpo.loss import DPOLoss, dpo_loss, summed_response_logprobs

__all__ = ["DPOConfig", "DPOLoss", "dpo_loss", "summed_response_logprobs"]
