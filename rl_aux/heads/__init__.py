"""Auxiliary heads: the plugin contract (base.py) and the built-in heads."""

from rl_aux.heads.base import (
    AuxHead,
    HeadConfig,
    HeadInputs,
    head_class,
    register_head,
    registered_heads,
)

__all__ = ["AuxHead", "HeadConfig", "HeadInputs", "head_class", "register_head", "registered_heads"]
