"""The error a condition that cannot be compiled raises: every problem at once, each naming where it is."""

from __future__ import annotations

from apps.core.errors import InvalidRequest


class RuleError(InvalidRequest):
    """`problems` lists every problem found, each starting with its path into the condition (`$.And[1].field`);
    the message joins them, so a caller that only shows the message still shows them all."""

    code = "invalid_condition"

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        count = len(self.problems)
        summary = f"The condition has {count} problem{'s' if count != 1 else ''}: " + "; ".join(self.problems)
        super().__init__(summary, param="condition")
