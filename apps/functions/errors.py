"""Why an attempt failed: a code (`models.ERROR_CODES`) that decides whether another attempt may help."""

from __future__ import annotations


class RunError(Exception):
    """An attempt's failure, with what it printed so far. `code` is matched against the function's `retry_on`."""

    def __init__(self, message: str, *, code: str, stdout: str = "", stderr: str = ""):
        super().__init__(message)
        self.message = message
        self.code = code
        self.stdout = stdout
        self.stderr = stderr

    def __repr__(self) -> str:
        return f"RunError({self.code!r}, {self.message!r})"
