"""The optimizer transforms moved into `runloop.optim`; the module paths callers used before still import them."""

import importlib

import runloop
import runloop.optim


def test_old_module_paths_are_the_new_modules():
    for old, new in (("agc", "agc"), ("sam", "sam"), ("per_tensor_clip", "per_tensor_clip")):
        assert importlib.import_module(f"runloop.{old}") is importlib.import_module(f"runloop.optim.{new}")
    from runloop.agc import adaptive_grad_clip
    from runloop.transforms import scale_by_tree, standard_promotion

    assert adaptive_grad_clip is runloop.optim.adaptive_grad_clip
    assert (scale_by_tree, standard_promotion) == (runloop.scale_by_tree, runloop.standard_promotion)
