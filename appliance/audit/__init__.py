"""Per-org hash-chained audit trail."""
