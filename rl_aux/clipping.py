"""Gradient-norm clipping that keeps a detached part detached.

One global norm over every parameter couples parts of the model that no loss connects: a head
cut from the torso by a stop-gradient still enlarges the norm, so it shrinks the torso's step
(docs/results/detached-heads.md). `ClipGroups` says what the config cuts; clipping each group
on its own then makes a detached head's update exactly as if its weight were 0.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Hashable

import jax
import optax

# `agent.clip_scope`. auto: `groups` when a stop-gradient is configured, else `global`.
CLIP_SCOPES = ("auto", "global", "per_module", "groups")
# AgentNetwork modules that read h after `rl_reads_sg_features`' stop-gradient.
RL_OUTPUT_MODULES = ("head_layers_", "policy", "value", "q")


@dataclasses.dataclass(frozen=True)
class ClipGroups:
    """Parameter groups that no gradient path joins, from the config's stop-gradients.

    `detached_heads`: heads with `stop_gradient_to_torso` (each trains only itself);
    `rl_outputs_detached`: the policy/value/Q layers read stop_gradient(h)
    (`network.rl_reads_sg_features`), so only the RL loss trains them and never the torso.
    """

    detached_heads: tuple[str, ...] = ()
    rl_outputs_detached: bool = False

    def __bool__(self) -> bool:
        return bool(self.detached_heads) or self.rl_outputs_detached

    @classmethod
    def from_config(cls, network_cfg, heads) -> ClipGroups:
        """The groups a learner's network config and its heads (AuxHead list) cut apart."""
        detached = tuple(h.name for h in heads if h.cfg.stop_gradient_to_torso)
        return cls(detached, bool(getattr(network_cfg, "rl_reads_sg_features", False)))

    def labels(self, params: dict) -> dict:
        """A label per leaf of `params` ({"net": ..., "heads": {...}}): 'shared' for the torso,
        the core and every attached head; 'rl_outputs'; 'head/<name>' per detached head."""

        def net_labels(tree: dict) -> dict:
            inner = tree.get("params", tree)
            out = {}
            for module, sub in inner.items():
                rl = self.rl_outputs_detached and module.startswith(RL_OUTPUT_MODULES)
                out[module] = _fill(sub, "rl_outputs" if rl else "shared")
            return {"params": out} if "params" in tree else out

        labels = {k: net_labels(v) if k == "net" else _fill(v, "shared") for k, v in params.items()}
        if "heads" in params:
            labels["heads"] = {
                name: _fill(sub, f"head/{name}" if name in self.detached_heads else "shared")
                for name, sub in params["heads"].items()
            }
        return labels

    def names(self) -> tuple[str, ...]:
        """Every label `labels` can give."""
        rl = ("rl_outputs",) if self.rl_outputs_detached else ()
        return ("shared", *rl, *(f"head/{n}" for n in self.detached_heads))


NO_GROUPS = ClipGroups()  # nothing cut apart: one global norm


def _fill(tree, label: str):
    return jax.tree.map(lambda _: label, tree)


def clip_by_module_norm(max_norm: float) -> optax.GradientTransformation:
    """`clip_by_global_norm` applied to each module on its own: every top-level entry of the
    params (the network) and each head under `params["heads"]`. Same (empty) state as
    `clip_by_global_norm`."""
    inner = optax.clip_by_global_norm(max_norm)

    def clip(tree):
        return inner.update(tree, inner.init(tree))[0]

    def update(updates, state, params=None):
        del params
        out = {k: clip(v) for k, v in updates.items() if k != "heads"}
        if "heads" in updates:
            out["heads"] = {name: clip(v) for name, v in updates["heads"].items()}
        return out, state

    return optax.GradientTransformation(inner.init, update)


def clip_by_group_norm(max_norm: float, groups: ClipGroups) -> optax.GradientTransformation:
    """`clip_by_global_norm` within each of `groups`' parameter groups (optax.multi_transform):
    a group whose gradient is zero leaves the others' clip factor as one global norm would."""
    transforms: dict[Hashable, optax.GradientTransformation] = {
        name: optax.clip_by_global_norm(max_norm) for name in groups.names()
    }
    return optax.multi_transform(transforms, groups.labels)


def resolve_scope(clip_scope: str, groups: ClipGroups) -> str:
    """The clip scope a learner uses; warns when an explicit global norm couples a detached
    part to the rest."""
    if clip_scope not in CLIP_SCOPES:
        raise ValueError(f"agent.clip_scope={clip_scope!r}; accepted: {', '.join(CLIP_SCOPES)}")
    if clip_scope == "auto":
        return "groups" if groups else "global"
    if clip_scope == "global" and groups:
        warnings.warn(
            "agent.clip_scope=global with a stop-gradient configured "
            f"({groups}): the detached part still scales the others' step through the shared "
            "clip norm; agent.clip_scope=auto (the default) clips each part on its own",
            stacklevel=2,
        )
    return clip_scope


def clip_transform(
    clip_scope: str, max_norm: float, groups: ClipGroups
) -> optax.GradientTransformation:
    """The clipping `agent.clip_scope` names, for a resolved scope (see `resolve_scope`)."""
    if clip_scope == "per_module":
        return clip_by_module_norm(max_norm)
    if clip_scope == "groups":
        return clip_by_group_norm(max_norm, groups)
    return optax.clip_by_global_norm(max_norm)
