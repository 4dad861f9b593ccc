"""What the engine raises. Subclasses of the one API error type, so every surface renders them."""

from __future__ import annotations

from apps.core.errors import Conflict, InvalidRequest


class DefinitionInvalid(InvalidRequest):
    """A definition that cannot be saved; `problems` lists every one (not only the first)."""

    code = "invalid_definition"

    def __init__(self, problems: list[str], *, analysis: dict | None = None):
        count = len(problems)
        super().__init__(f"The workflow definition has {count} problem{'s' if count != 1 else ''}: "
                         + "; ".join(problems))
        self.problems = list(problems)
        self.analysis = analysis


class TransitionNotEnabled(Conflict):
    """The transition cannot fire now: tokens missing (often because a concurrent fire took them) or the guard
    does not hold. `explanation` says which."""

    code = "transition_not_enabled"

    def __init__(self, message: str, *, explanation: dict | None = None):
        super().__init__(message)
        self.explanation = explanation or {}
