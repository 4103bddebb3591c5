"""Break-glass and privileged-access appliance with an embedded OIDC provider."""

__version__ = "0.1.0"
