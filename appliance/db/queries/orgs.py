"""Queries on orgs and tenancy."""

from appliance.db.queries import query

SET_ORG_CONTEXT = query("set_org_context", "SELECT set_config('appliance.org_id', $1::text, true)")
ORG_BY_NAME = query("org_by_name", "SELECT id, name, display_name FROM orgs WHERE name = $1")
ORG_LIST = query("org_list", "SELECT id, name, display_name FROM orgs ORDER BY name")
ORG_INSERT = query(
    "org_insert",
    """
    INSERT INTO orgs (name, display_name) VALUES ($1, $2)
    ON CONFLICT (name) DO NOTHING
    RETURNING id, name, display_name
    """,
)
