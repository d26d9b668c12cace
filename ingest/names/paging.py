"""Where a paginated list of the API lives, and how its items and total are read from a page."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ingest.names.api_errors import UnexpectedResponseError


@dataclass(frozen=True)
class PagedResource:
    """Where a paginated list lives and how to page through it."""

    name: str
    path: str
    items_key: str | None = None  # dotted path to the list; None: top-level list or `name`
    total_key: str | None = None  # dotted path to the total item count, if the API gives one
    page_param: str = "page"
    per_page_param: str = "per_page"
    per_page: int = 500
    first_page: int = 1
    max_pages: int = 10_000
    query: Mapping[str, str] = field(default_factory=dict)


def lookup(payload: Any, dotted: str) -> Any:
    """payload['a']['b'] for 'a.b'; None when a step is missing."""
    current = payload
    for part in dotted.split("."):
        if not isinstance(current, dict) or part not in current:
            return None
        current = current[part]
    return current


def extract_items(payload: Any, resource: PagedResource) -> list[dict[str, Any]]:
    """The list of items in one page: a top-level list, or the list under items_key/name."""
    if isinstance(payload, list):
        items: Any = payload
    else:
        key = resource.items_key or resource.name
        items = lookup(payload, key)
        if items is None:
            keys = (
                ", ".join(sorted(payload)) if isinstance(payload, dict) else type(payload).__name__
            )
            raise UnexpectedResponseError(
                f"{resource.name}: the answer has no list under {key!r} (it has: {keys}); "
                "set items_key in --api-config"
            )
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise UnexpectedResponseError(
            f"{resource.name}: expected a list of JSON objects, got {type(items).__name__}; "
            "set items_key in --api-config"
        )
    return items


def extract_total(payload: Any, resource: PagedResource) -> int | None:
    if resource.total_key is None:
        return None
    total = lookup(payload, resource.total_key)
    if isinstance(total, bool):
        return None
    if isinstance(total, int):
        return total
    if isinstance(total, str) and total.isdigit():
        return int(total)
    return None
