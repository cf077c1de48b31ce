"""The register of power-dependent citizens and their follow-up in an outage (docs/citizens.md)."""
