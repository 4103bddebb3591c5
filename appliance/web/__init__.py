"""HTTP plumbing shared by the planes: errors, health, metrics, request parsing."""
