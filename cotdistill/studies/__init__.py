"""Ready-made studies composed from the run: the testbed with known answers and its control suite
(testbed), the placement sweep of `make demo` (demo), and the presets the Launch page offers
(presets). Recipes, not parts: they may import the run orchestrator and every layer below it; only
the CLI, the worker and the app import them.
"""
