"""IAM policy evaluation for the statements of one role, as AWS documents it.

A request is allowed when at least one Allow statement matches it and no Deny statement does
(an explicit deny wins; no match is an implicit deny). A statement matches when its Action (or
NotAction) matches the action, its Resource (or NotResource) matches the resource, and every
condition holds. Wildcards: `*` any run of characters (`/` included), `?` one character; actions
compare case-insensitively, resources case-sensitively. Conditions: the String*, Arn*, Bool and
Null operators with the `IfExists` suffix; several values of one key are OR-ed, several keys and
operators AND-ed; a key missing from the request fails the condition (IfExists: passes).

This is what the template's roles use; anything else raises, so an unsupported condition can
never pass by accident.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any


@dataclass(frozen=True)
class Request:
    """One authorization AWS makes: an action on one resource, with its condition keys."""

    action: str  # "s3:GetObject"
    resource: str  # "arn:aws:s3:::bucket/key"
    context: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    # Sids (or "#<index>") of the Allow statements that matched; of the Deny if it was denied
    statements: tuple[str, ...]


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


@lru_cache(maxsize=4096)
def _pattern(text: str, ignore_case: bool) -> re.Pattern[str]:
    translated = fnmatch.translate(text)  # * . ? [..]; [ and ] do not occur in ARNs here
    return re.compile(translated, re.IGNORECASE if ignore_case else 0)


def matches(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    return bool(_pattern(pattern, ignore_case).match(value))


def _condition_holds(operator: str, key: str, expected: list[str], context: Mapping[str, str]):
    if_exists = operator.endswith("IfExists")
    base = operator.removesuffix("IfExists")
    if base == "Null":
        wants_null = str(expected[0]).lower() == "true"
        return (key not in context) == wants_null
    if key not in context:
        return if_exists
    actual = str(context[key])
    values = [str(v) for v in expected]
    if base in ("StringEquals", "ArnEquals"):
        return actual in values
    if base == "StringEqualsIgnoreCase":
        return actual.lower() in {v.lower() for v in values}
    if base in ("StringLike", "ArnLike"):
        return any(matches(v, actual) for v in values)
    if base in ("StringNotEquals", "ArnNotEquals"):
        return actual not in values
    if base in ("StringNotLike", "ArnNotLike"):
        return not any(matches(v, actual) for v in values)
    if base == "Bool":
        return actual.lower() in {v.lower() for v in values}
    raise ValueError(f"condition operator {operator} is not supported by this evaluator")


def _statement_matches(statement: Mapping[str, Any], request: Request) -> bool:
    if "Action" in statement:
        if not any(
            matches(a, request.action, ignore_case=True) for a in as_list(statement["Action"])
        ):
            return False
    elif any(matches(a, request.action, ignore_case=True) for a in as_list(statement["NotAction"])):
        return False
    if "Resource" in statement:
        if not any(matches(r, request.resource) for r in as_list(statement["Resource"])):
            return False
    elif any(matches(r, request.resource) for r in as_list(statement.get("NotResource", []))):
        return False
    for operator, keys in (statement.get("Condition") or {}).items():
        for key, expected in keys.items():
            if not _condition_holds(operator, key, as_list(expected), request.context):
                return False
    return True


def _label(statement: Mapping[str, Any], index: int) -> str:
    return str(statement.get("Sid") or f"#{index}")


@dataclass(frozen=True)
class Policy:
    """The statements of a role (inline policies merged), concrete: no intrinsics left."""

    statements: tuple[Mapping[str, Any], ...]

    @classmethod
    def of(cls, statements: Iterable[Mapping[str, Any]]) -> Policy:
        return cls(tuple(statements))

    def evaluate(self, request: Request) -> Decision:
        allows: list[str] = []
        for index, statement in enumerate(self.statements):
            if not _statement_matches(statement, request):
                continue
            if statement["Effect"] == "Deny":
                return Decision(False, (_label(statement, index),))
            allows.append(_label(statement, index))
        return Decision(bool(allows), tuple(allows))

    def evaluate_all(self, requests: Sequence[Request]) -> Decision:
        """Allowed only if every authorization of one API call is allowed."""
        used: list[str] = []
        for request in requests:
            decision = self.evaluate(request)
            if not decision.allowed:
                return decision
            used.extend(decision.statements)
        return Decision(True, tuple(dict.fromkeys(used)))

    def grants(self) -> list[tuple[str, str]]:
        """(sid, action) of every Allow: the unit a least-privilege report lists."""
        return [
            (_label(s, i), action)
            for i, s in enumerate(self.statements)
            if s["Effect"] == "Allow"
            for action in as_list(s.get("Action"))
        ]

    def grant_matches(self, sid: str, action: str, request: Request) -> bool:
        """Whether the action `action` of statement `sid` (any of its resources) covers it."""
        for index, statement in enumerate(self.statements):
            if _label(statement, index) != sid or statement["Effect"] != "Allow":
                continue
            if _statement_matches({**statement, "Action": action}, request):
                return True
        return False
