"""`appliance doctor`: the first command of an on-call shift.

Each check returns findings; a finding that is not `ok` names the runbook
(in `runbooks/`) to open next.
"""
