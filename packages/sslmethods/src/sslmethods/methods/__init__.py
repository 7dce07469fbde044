"""The pre-training methods: the contract every method implements (`method.AbstractMethod`), the study's six
(`supervised`, `clip`, `simclr`, `byol`, `dino`, `mae`) and their registry (`registry.METHODS`, `get_method`).
Built from `sslmethods.blocks` only."""
