"""Queries of the advisory-locked job runner (appliance/jobs.py)."""

from appliance.db.queries import query

# Transaction-scoped, so the lock ends with the job's transaction whatever
# happens, and a pooled connection never carries it past its release.
JOB_TRY_LOCK = query(
    "job_try_lock", "SELECT pg_try_advisory_xact_lock(hashtextextended('job:' || $1, 0))"
)
JOB_SCHEDULE_ENSURE = query(
    "job_schedule_ensure",
    """
    INSERT INTO job_schedule (name, next_run_at) VALUES ($1, $2)
    ON CONFLICT (name) DO NOTHING
    """,
)
JOB_SCHEDULE_GET = query(
    "job_schedule_get", "SELECT next_run_at, runs FROM job_schedule WHERE name = $1"
)
JOB_SCHEDULE_STARTED = query(
    "job_schedule_started",
    """
    UPDATE job_schedule
    SET next_run_at = $2, last_started_at = $3, last_plane = $4, runs = runs + 1
    WHERE name = $1
    """,
)
JOB_SCHEDULE_FINISHED = query(
    "job_schedule_finished", "UPDATE job_schedule SET last_finished_at = $2 WHERE name = $1"
)
JOB_ORG_IDS = query("job_org_ids", "SELECT id, name FROM orgs ORDER BY name")
