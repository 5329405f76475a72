"""The embedded quickstart: a tiny model, a synthetic task, SFT then GRPO on a laptop CPU."""

from nemo_rl_recipes.quickstart.run import QuickstartResult, Scores, run_quickstart
from nemo_rl_recipes.quickstart.task import correct, make_sum_task, sft_rows, well_formatted

__all__ = [
    "QuickstartResult",
    "Scores",
    "correct",
    "make_sum_task",
    "run_quickstart",
    "sft_rows",
    "well_formatted",
]
