"""Admin plane: management API and console."""
