"""flopstudy's commands (`flopcli` convention), one module per command with ``main(argv) -> int``: ``sweep``,
``sweep_flops``, ``report``, ``plan``, ``demo`` (``flopwise-sweep`` ...), and ``flopwise``: the one command that
runs every package's commands by name (``flopwise pretrain ...``)."""
