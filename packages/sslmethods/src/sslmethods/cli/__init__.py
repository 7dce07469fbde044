"""sslmethods' commands (`flopcli` convention): ``pretrain`` (``flopwise-pretrain``) and ``profile_flops``
(``flopwise-profile``); each module has ``main(argv) -> int``."""
