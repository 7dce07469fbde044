"""segtransfer's commands (`flopcli` convention), one module per command with ``main(argv) -> int``:
``finetune_seg`` (``flopwise-finetune-seg``), ``finetune_det`` (``flopwise-finetune-det``) and ``probe_layers``
(``flopwise-probe-layers``), each generating its flags from its study's spec. A new command
follows the same shape: ``build_parser()``, a ``body(args)`` that checks every flag before any side effect,
``main(argv)`` calling ``flopcli.run``, and a line in pyproject's ``[project.scripts]``."""
