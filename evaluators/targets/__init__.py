"""One module per hardware target family; each registers its `--hw` names on import."""
