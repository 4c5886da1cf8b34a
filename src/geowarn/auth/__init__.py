"""Users, roles, tokens, scoping to administrative units and masking of personal data."""
