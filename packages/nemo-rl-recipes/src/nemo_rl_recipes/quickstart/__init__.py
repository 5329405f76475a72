"""The embedded quickstart: a tiny model, a synthetic task, SFT then GRPO on a laptop CPU."""

from nemo_rl_recipes.quickstart.run import QuickstartResult, run_quickstart
from nemo_rl_recipes.quickstart.task import exact_match, make_sum_task, sft_rows

__all__ = ["QuickstartResult", "exact_match", "make_sum_task", "run_quickstart", "sft_rows"]
