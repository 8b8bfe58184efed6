"""Auxiliary heads: the plugin contract (base.py) and the built-in heads.

Importing any of rl_aux.heads (base.py included) runs this file first, so the built-in heads
are registered before `head_class`/`registered_heads` can be asked; base.py imports no head,
which keeps the heads' imports one-way (head -> base).
"""

from rl_aux.heads import (  # noqa: F401  (registration side effects)
    future,
    latent_pred,
    next_latent,
    next_obs,
    noise_target,
    pvn,
    reward_pred,
)
from rl_aux.heads.base import (
    AuxHead,
    HeadConfig,
    HeadInputs,
    head_class,
    register_head,
    registered_heads,
)

__all__ = ["AuxHead", "HeadConfig", "HeadInputs", "head_class", "register_head", "registered_heads"]
