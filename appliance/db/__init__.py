"""PostgreSQL access: pools per plane, migrations, named queries, tenancy."""
