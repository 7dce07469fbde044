"""segtransfer's commands, one module per command with ``main(argv) -> int`` (bad input: one line ``error: ...``
and status 2; interrupted after a checkpoint: one line ``interrupted: ...`` and status 3): ``finetune_det``
(``tools/finetune_det.py``)."""
