"""Schema-driven fuzzing of the whole admin API with schemathesis, in process.

Every operation of `/admin/openapi.json` gets generated requests, valid and
invalid, from an org-admin of a fresh org. The checks: no 5xx, every status
and content type documented, every JSON body valid against its schema, and
invalid input rejected with a 4xx. Examples per operation are bounded so the
run stays under about two minutes.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from quart import Quart
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from appliance.app import create_app
from appliance.settings import Plane
from tests.admin.conftest import AdminUser, Tenant
from tests.conftest import Database

CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
# Operations that end the fuzzing session; tested on their own in test_session.py.
SKIPPED = {"logout"}


@pytest.fixture(scope="module")
def fuzz_app(database: Database, seal_keys_published: None) -> Iterator[Quart]:
    from appliance.clock import system_clock

    app = create_app(database.settings(Plane.ADMIN), clock=system_clock)
    yield app
    asgi.shutdown_lifespans()


@pytest.fixture(scope="module")
def fuzz_admin(fuzz_tenant: Tenant) -> AdminUser:
    return fuzz_tenant.users["admin"]


@pytest.fixture(scope="module")
def api_schema(fuzz_app: Quart, fuzz_admin: AdminUser) -> schemathesis.BaseSchema:
    loaded = schemathesis.openapi.from_asgi("/admin/openapi.json", fuzz_app)
    # Pinned values are never negated: every request targets the caller's own org
    # with a valid session, so the fuzzing reaches the handlers behind the auth check.
    loaded.config.update(parameters={"path.org": fuzz_admin.org}, headers=fuzz_admin.headers)
    return loaded


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_admin_api_fuzz(case: schemathesis.Case) -> None:
    if case.operation.definition.raw.get("operationId") in SKIPPED:
        return
    case.call_and_validate(checks=CHECKS)
