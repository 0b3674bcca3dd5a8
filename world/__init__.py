"""A world where edits are real: procedural scenes with known truth (scenes, cases), small models
of the engine's architectures trained on them (train), an independent judge (judge), and the
shipped weights (weights/, the `--models shapes` preset)."""
