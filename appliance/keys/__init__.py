"""Key hierarchy: per-plane master secret -> HKDF-derived keys -> signing keys."""
