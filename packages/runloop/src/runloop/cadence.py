"""When a periodic action is due (big_vision's ``u.itstime``): logging, evaluation, checkpoints.

Example::

    if due(step, cfg.log_every, total=cfg.steps):    # every 10 steps and at the last one
        log(...)
"""

from __future__ import annotations

__all__ = ["due"]


def due(step: int, every: int, *, total: int | None = None) -> bool:
    """True when ``step`` (the number of steps done, >= 1) is a multiple of ``every``, or is the run's last step
    ``total`` (when given). ``every=0`` means never, except at ``total``."""
    if isinstance(every, bool) or not isinstance(every, int) or every < 0:
        raise ValueError(f"every={every!r}; expected an interval in steps >= 0 (0: never)")
    if step < 1:
        return False
    return (every > 0 and step % every == 0) or (total is not None and step == total)
