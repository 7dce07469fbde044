"""optax transforms the packages' optimizer recipes compose (the recipes stay with their packages).

- `agc`: adaptive gradient clipping (Brock et al. 2021), unit-wise, also on layer-stacked weights.
- `sam`: sharpness-aware minimisation (Foret et al. 2021), one perturbation for the whole batch or one per device.
- `per_tensor_clip`: DINO's clip of each gradient tensor on its own.
- `promotion`: `standard_promotion(tx)`, numpy-style dtype promotion inside a transform.
- `tree_scale`: `scale_by_tree(scales)`, per-leaf update multipliers (layer-wise learning rates).
"""

from . import agc, per_tensor_clip, promotion, sam, tree_scale
from .agc import adaptive_grad_clip, unitwise_norm
from .per_tensor_clip import per_tensor_clip_by_norm
from .promotion import standard_promotion
from .sam import per_device_sam_gradients, sam_gradients, sam_perturbation, sharded_grad_fn, split_batch
from .tree_scale import scale_by_tree

__all__ = [
    "adaptive_grad_clip",
    "agc",
    "per_device_sam_gradients",
    "per_tensor_clip",
    "per_tensor_clip_by_norm",
    "promotion",
    "sam",
    "sam_gradients",
    "sam_perturbation",
    "scale_by_tree",
    "sharded_grad_fn",
    "split_batch",
    "standard_promotion",
    "tree_scale",
    "unitwise_norm",
]
