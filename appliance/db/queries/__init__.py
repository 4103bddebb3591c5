"""Every SQL statement of the appliance, as named, parameterised queries.

Each domain module declares its statements with `query(name, sql)`. The
registry lets a test prepare every statement against the migrated schema, so
a statement that no longer matches the tables fails the suite. SQL text is
never built by string formatting: values travel as `$n` parameters.
"""

from __future__ import annotations

import importlib
import pkgutil
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
    """Import every domain module of this package and return the registry's queries."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    return list(REGISTRY.values())
