"""Every named query prepares against the migrated schema."""

from __future__ import annotations

import asyncpg
import pytest

from appliance.db.queries import all_queries


def test_registry_is_not_empty() -> None:
    assert len(all_queries()) >= 20


@pytest.mark.parametrize("query", all_queries(), ids=lambda q: q.name)
async def test_query_prepares(superuser: asyncpg.Connection, query: object) -> None:
    from appliance.db.queries import Query

    assert isinstance(query, Query)
    statement = await superuser.prepare(query.sql)
    assert statement.get_parameters() is not None


async def test_query_with_unknown_column_fails_to_prepare(superuser: asyncpg.Connection) -> None:
    with pytest.raises(asyncpg.UndefinedColumnError):
        await superuser.prepare("SELECT no_such_column FROM orgs WHERE name = $1")
