"""Privacy mechanisms: value protection of published statistics (and, later, differential privacy)."""
