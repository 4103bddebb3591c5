"""Chaos drills: start the four planes, run a steady workload, break things, check invariants.

`appliance chaos run` (or `python -m chaos run`) is the entry point; docs/chaos.md
describes the scenarios, the invariants and the report.
"""
