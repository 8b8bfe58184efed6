"""`HeadSuite`: what a learner holds to run any set of auxiliary heads without knowing them.

It initialises each head's params under params["heads"][name], computes the features the
union of the heads' `requires` asks for (once, shared by all heads), and returns the weighted
sum of head losses plus per-head metrics (`aux/<name>/loss`, `aux/<name>/weighted_loss`
(read by per-head balancers), `aux/<name>/<metric>`).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from rl_aux.heads.base import AuxHead, HeadInputs
from rl_aux.types import Array, Params, PRNGKey, Transition

# feats_fn(net_params, which) -> network outputs dict for which in {"obs", "next_obs"}
FeatsFn = Callable[[Params, str], dict]


class HeadSuite:
    def __init__(self, heads: list[AuxHead]):
        self.heads = list(heads)
        req = set().union(*(h.requires for h in self.heads)) if self.heads else set()
        self.requires = frozenset(req)
        self.needs_target = any(h.needs_target for h in self.heads)
        taus = {h.cfg.target_tau for h in self.heads if h.needs_target}
        if len(taus) > 1:
            raise ValueError(
                f"heads requiring a target network disagree on target_tau ({sorted(taus)}); "
                "set the same heads.<name>.target_tau for all of them"
            )
        self.target_tau = taus.pop() if taus else 0.0

    def __bool__(self) -> bool:
        return bool(self.heads)

    @property
    def names(self) -> list[str]:
        return [h.name for h in self.heads]

    def inputs(
        self,
        params: Params,
        target: Params,  # None when no head requires a target
        tr: Transition,
        feats: dict,
        feats_fn: FeatsFn,
        num_actions: int,
        mask: Array | None = None,
    ) -> HeadInputs:
        """Build HeadInputs once; target features never carry gradient."""
        r = self.requires
        sg = jax.lax.stop_gradient
        return HeadInputs(
            obs=tr.obs,
            action=tr.action,
            reward=tr.reward,
            terminated=tr.terminated,
            truncated=tr.truncated,
            next_obs=tr.next_obs,
            feats=feats,
            num_actions=num_actions,
            next_feats=feats_fn(params["net"], "next_obs") if "next_feats" in r else None,
            target_feats=sg(feats_fn(target["net"], "obs")) if "target_feats" in r else None,
            target_next_feats=(
                sg(feats_fn(target["net"], "next_obs")) if "target_next_feats" in r else None
            ),
            mask=mask,
        )

    def init(self, key: PRNGKey, inputs: HeadInputs) -> dict:
        keys = jax.random.split(key, max(len(self.heads), 1))
        return {h.name: h.init(k, inputs) for h, k in zip(self.heads, keys, strict=False)}

    def loss(
        self,
        params: Params,
        target: Params,  # None when no head requires a target
        inputs: HeadInputs,
        weights: dict,
        key: PRNGKey,
    ) -> tuple[Array, dict]:
        """Sum_i weights[name_i] * loss_i, and metrics. `params`/`target` are full trees."""
        total = jnp.zeros(())
        metrics = {}
        keys = jax.random.split(key, max(len(self.heads), 1))
        for head, k in zip(self.heads, keys, strict=False):
            hin = inputs
            if "target_head_params" in head.requires:
                hin = inputs.replace(
                    target_head_params=jax.lax.stop_gradient(target["heads"][head.name])
                )
            loss, m = head.loss(params["heads"][head.name], hin, k)
            total = total + weights[head.name] * loss
            metrics[f"aux/{head.name}/loss"] = loss
            metrics[f"aux/{head.name}/weighted_loss"] = weights[head.name] * loss
            metrics.update({f"aux/{head.name}/{n}": v for n, v in m.items()})
        return total, metrics
