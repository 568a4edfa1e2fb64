"""HTTP benchmark of taskhub (not part of the service; see bench/README.md)."""
