"""Config templates, the embedded quickstart and recipes for nemo-rl.

Example:
    >>> from nemo_rl_recipes import load_template
    >>> load_template("sft-chat").algorithm
    'sft'
"""

from __future__ import annotations

from nemo_rl_recipes.templates import (
    TemplateInfo,
    TemplateNotFoundError,
    list_templates,
    load_template,
    template_path,
)

__all__ = [
    "TemplateInfo",
    "TemplateNotFoundError",
    "list_templates",
    "load_template",
    "template_path",
]
