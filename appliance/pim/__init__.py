"""PIM plane: just-in-time elevation with approvals."""
