"""Queries on rate-limit windows."""

from appliance.db.queries import query

RATE_LIMIT_HITS = query(
    "rate_limit_hits",
    "SELECT COALESCE(sum(hits), 0) FROM rate_limit_windows WHERE scope = $1 AND key = $2 "
    "AND window_start > $3",
)
RATE_LIMIT_RECORD = query(
    "rate_limit_record",
    """
    INSERT INTO rate_limit_windows (scope, key, window_start, hits) VALUES ($1, $2, $3, 1)
    ON CONFLICT (scope, key, window_start) DO UPDATE SET hits = rate_limit_windows.hits + 1
    """,
)
RATE_LIMIT_PURGE = query(
    "rate_limit_purge", "DELETE FROM rate_limit_windows WHERE window_start < $1"
)
