"""Auth plane: the OAuth 2.1 / OpenID Connect provider."""
