"""flopdata's commands (`flopcli` convention): ``build_dataset`` (``flopwise-build-dataset``) and
``contact_sheet`` (``flopwise-contact-sheet``); each module has ``main(argv) -> int``."""
