"""Prompt files, rendered with Jinja2; a missing variable is an error, never an empty string."""
from __future__ import annotations

from importlib import resources

from jinja2 import Environment, StrictUndefined

_env = Environment(undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False)


def load_prompt(name: str) -> str:
    """Raw text of prompts/<name>.md."""
    return resources.files(__package__).joinpath(f"{name}.md").read_text(encoding="utf-8")


def render_prompt(name: str, **variables) -> str:
    """Render prompts/<name>.md; raises jinja2.UndefinedError when a variable is missing."""
    return _env.from_string(load_prompt(name)).render(**variables)
