"""Data sources -> records (`tfnlp.data.records`), and seeded splits."""
