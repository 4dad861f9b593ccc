"""The named rules every tenant has, shipped as data (the original engine's common rules).

Bare field names (`status`, `priority`, `reviewer`) look in `metadata`, then in `data`; `data.…` names only
the token's data. "Not empty" means present, not null, not a blank string, not an empty list or object.
A tenant's own rule with the same name shadows the built-in.
"""

from __future__ import annotations


def _filled(field: str) -> dict:
    return {"type": "Not", "condition": {"type": "FieldIsEmpty", "field": field}}


def _equals(field: str, value) -> dict:
    return {"type": "FieldEquals", "field": field, "value": value}


BUILTIN_RULES: dict[str, dict] = {
    "has_content": _filled("data.content"),
    "has_title": _filled("data.title"),
    "has_description": _filled("data.description"),
    "has_reviewer": _filled("reviewer"),
    "has_approver": _filled("approver"),
    "has_assignee": _filled("assignee"),
    "has_creator": _filled("creator"),
    "status_approved": _equals("status", "approved"),
    "status_rejected": _equals("status", "rejected"),
    "status_pending": _equals("status", "pending"),
    "high_priority": {"type": "FieldGreaterThan", "field": "priority", "value": 5},
    "critical_priority": {"type": "FieldGreaterThan", "field": "priority", "value": 8},
    "emergency_flag": _equals("emergency", True),
    "tests_passed": _equals("tests_passed", True),
    "tests_failed": _equals("tests_passed", False),
    "security_approved": _equals("security_approved", True),
    "security_flagged": _equals("security_flagged", True),
    "admin_override": _equals("admin_override", True),
}

BUILTIN_DESCRIPTIONS: dict[str, str] = {
    "has_content": "data.content is present and not empty",
    "has_title": "data.title is present and not empty",
    "has_description": "data.description is present and not empty",
    "has_reviewer": "reviewer (metadata, else data) is present and not empty",
    "has_approver": "approver (metadata, else data) is present and not empty",
    "has_assignee": "assignee (metadata, else data) is present and not empty",
    "has_creator": "creator (metadata, else data) is present and not empty",
    "status_approved": "status (metadata, else data) equals \"approved\"",
    "status_rejected": "status (metadata, else data) equals \"rejected\"",
    "status_pending": "status (metadata, else data) equals \"pending\"",
    "high_priority": "priority (metadata, else data) is a number (or numeric string) greater than 5",
    "critical_priority": "priority (metadata, else data) is a number (or numeric string) greater than 8",
    "emergency_flag": "emergency (metadata, else data) is true",
    "tests_passed": "tests_passed (metadata, else data) is true",
    "tests_failed": "tests_passed (metadata, else data) is false (a missing flag is neither passed nor failed)",
    "security_approved": "security_approved (metadata, else data) is true",
    "security_flagged": "security_flagged (metadata, else data) is true",
    "admin_override": "admin_override (metadata, else data) is true",
}
