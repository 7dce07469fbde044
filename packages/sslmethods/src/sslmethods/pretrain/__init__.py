"""Pre-training a method through the engine (`runloop`): every option of a run (`spec`: `PretrainSpec`, with its
``build``, ``measure`` and ``train``; `command_line`: its ``flopwise-pretrain`` parser and ``read_pretrain``, the
spec a run directory was made from; `flop_budget`: a FLOP budget as steps), the input pipeline (`data`), optimizers
(`optim`), the study's presets (`presets`), a configured method from names (`recipes`), dotted overrides
(`overrides`), the run's length as data (`run_length`), the train state and step (`train_state`, `step`), the kNN
monitor (`knn`), the held-out set (`heldout`), second-stage runs (`init_from`), the exported encoder (`export`) and
the trainer (`trainer`)."""
