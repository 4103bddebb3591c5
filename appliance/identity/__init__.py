"""Embedded authentication shared by every plane: passwords, TOTP."""
