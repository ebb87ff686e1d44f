"""Model factories by name."""
