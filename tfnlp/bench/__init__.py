"""Side-by-side benchmarks: `python -m tfnlp.bench <suite> [--quick]`.

Each suite prints a markdown table, then a last line `headline: <the figure that matters>`.
`--quick` fits in about a minute.
"""
