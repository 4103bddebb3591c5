"""Every SQL statement of the appliance, as named, parameterised queries.

Each domain module declares its statements with `query(name, sql)`. The
registry lets a test prepare every statement against the migrated schema, so
a statement that no longer matches the tables fails the suite. SQL text is
never built by string formatting: values travel as `$n` parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

REGISTRY: dict[str, Query] = {}


@dataclass(frozen=True)
class Query:
    name: str
    sql: str


def query(name: str, sql: str) -> str:
    """Register `sql` under `name` and return the SQL text for direct use."""
    if name in REGISTRY:
        raise ValueError(f"query {name!r} is declared twice")
    REGISTRY[name] = Query(name, " ".join(sql.split()))
    return REGISTRY[name].sql


def all_queries() -> list[Query]:
    """Import every domain module and return the registry's queries."""
    from appliance.db.queries import audit, breakglass, keys, orgs, ratelimit  # noqa: F401

    return list(REGISTRY.values())
