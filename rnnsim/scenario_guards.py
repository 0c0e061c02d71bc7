"""Small guards the scenario schema uses (kept out of scenario.py, which is being split).

- :data:`PlainText`: a string type that refuses control characters (tabs and newlines allowed): a name,
  description or lesson step is drawn on a terminal, where ESC could retitle or clear it.
- :func:`none_word`: ``none`` given for a field that may be left out (``model.forget_bias``) means left out,
  in ``--set`` and ``with_changes`` as in the TUI's parameter panel.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel
from pydantic_core import PydanticCustomError

from rnnsim import safe_text

__all__ = ["PlainText", "none_word"]


def _plain(value: str) -> str:
    if safe_text.has_control(value, allow="\t\n\r"):
        raise PydanticCustomError("control_chars", "contains control characters")
    return value


PlainText = Annotated[str, AfterValidator(_plain)]


def none_word(model: type[BaseModel] | None, name: str, value: Any) -> Any:
    """None for the word ``none`` when ``model.name`` is optional; otherwise ``value`` unchanged."""
    info = model.model_fields.get(name) if model is not None else None
    if isinstance(value, str) and value.strip().lower() == "none" and info is not None:
        if type(None) in getattr(info.annotation, "__args__", ()):
            return None
    return value
