"""`python -m chaos`: the same commands as `appliance chaos`."""

from appliance.cli.chaos import chaos

chaos()
