"""What every learner shares, written once: the optimiser with a vmappable learning rate, the
balancer from config, network + head param init, the gradient step, LR annealing,
epsilon-greedy, target updates, the hyperparameters a grid can vmap, and the episode statistics
the trainer aggregates. PPO, DQN and PVN (agents/) call these, so each learner file holds only
its own algorithm."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from rl_aux.balancers import Balancer, balanced_grads, balancer_options, make_balancer
from rl_aux.clipping import NO_GROUPS, ClipGroups, clip_transform, resolve_scope
from rl_aux.heads.suite import HeadSuite
from rl_aux.typed_config import BALANCER_GRID
from rl_aux.types import Array, Params, PRNGKey, Transition


def clip_and_adam(
    learning_rate,
    max_grad_norm: float,
    eps: float,
    clip_scope: str = "global",
    eps_root: float = 0.0,
    groups: ClipGroups = NO_GROUPS,
) -> optax.GradientTransformation:
    """Gradient clipping (`rl_aux/clipping.py`, scope already resolved) then Adam."""
    clip = clip_transform(clip_scope, max_grad_norm, groups)
    adam = optax.adam(learning_rate, eps=eps, eps_root=eps_root)
    return optax.chain(clip, adam)


def make_optimizer(
    cfg, eps_root: float = 0.0, groups: ClipGroups = NO_GROUPS
) -> optax.GradientTransformation:
    """Gradient-norm clipping (`cfg.clip_scope`: auto clips each part a stop-gradient cuts
    apart on its own, see `groups`) + Adam, with the learning rate injected as state so it can
    be a traced, per-seed/grid-point value (see `set_lr`). `eps_root` > 0 makes Adam
    differentiable where a gradient is 0 (lookahead)."""
    tx = optax.inject_hyperparams(
        clip_and_adam, static_args=("max_grad_norm", "eps", "clip_scope", "eps_root", "groups")
    )
    return tx(
        learning_rate=cfg.lr,
        max_grad_norm=cfg.max_grad_norm,
        eps=cfg.adam_eps,
        clip_scope=resolve_scope(getattr(cfg, "clip_scope", "auto"), groups),
        eps_root=eps_root,
        groups=groups,
    )


def set_lr(opt_state, lr):
    """A copy of an inject_hyperparams state with a new learning rate (traced or not)."""
    return opt_state._replace(hyperparams={**opt_state.hyperparams, "learning_rate": lr})


def balancer_from(cfg) -> Balancer:
    """The balancer of a learner config's nested `balancer` (its name and its own options)."""
    return make_balancer(cfg.balancer)


def balancer_at(cfg, hparams: dict, static: Balancer) -> Balancer:
    """The learner's balancer with the options a grid put in `hparams` (`balancer.<opt>`)
    traced per grid point; `static` (the one built from the config) when there are none, so
    runs without such an axis trace exactly as before."""
    traced = {
        k.removeprefix(BALANCER_GRID): v for k, v in hparams.items() if k.startswith(BALANCER_GRID)
    }
    if not traced:
        return static
    return make_balancer(cfg.balancer.name, **{**balancer_options(cfg.balancer), **traced})


def default_hparams(cfg, suite: HeadSuite) -> dict:
    """The vmappable floats every run carries: learning rate and each head's loss weight.

    A grid over another float field of the learner config adds it as a top-level entry
    (experiments/train.py `grid_points`); the learner reads it through `hp`."""
    return {"lr": cfg.lr, "aux_weights": {h.name: h.cfg.weight for h in suite.heads}}


def hp(hparams: dict, name: str, static: Any) -> Any:
    """Hyperparameter `name`: the traced per-run value when a grid put it in `hparams`, else
    the config's Python constant `static` (so runs without that grid axis trace exactly as
    before, constants folded)."""
    return hparams[name] if name in hparams else static


def as_hparams(hparams: dict) -> dict:
    """A hyperparameter tree as float32 arrays (the leaves the trainer vmaps)."""
    return jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), hparams)


# ---------------------------------------------------------------------------- init
def init_params(
    net, suite: HeadSuite, k_net: PRNGKey, k_head: PRNGKey, example: Transition, *net_args
) -> dict:
    """{"net": network params, "heads": each head's params} from an example batch.

    `net_args` follow the observation in the network's call (recurrent: carry, first). The
    heads are initialised on the inputs they will see: the network's outputs on
    `example.obs` (the example is its own successor)."""
    net_params = jax.jit(net.init)(k_net, example.obs, *net_args)  # one compile, not op-by-op
    params = {"net": net_params, "heads": {}}
    if suite:
        out, _ = net.apply(net_params, example.obs, *net_args)
        fn = lambda p, which: net.apply(p, example.obs, *net_args)[0]
        inp = suite.inputs(params, params, example, out, fn, net.num_actions)
        params["heads"] = suite.init(k_head, inp)
    return params


def init_opt_state(tx: optax.GradientTransformation, params: Params, hparams: dict):
    """`tx`'s state for `params` with the run's (traced) learning rate injected."""
    return set_lr(tx.init(params), jnp.asarray(hparams["lr"], jnp.float32))


# ---------------------------------------------------------------------------- one step
class TrainCarry(NamedTuple):
    """What a gradient step changes: params, their EMA target (None: no head needs one), the
    optimiser's and the balancer's states."""

    params: Params
    target: Params | None
    opt_state: Any
    bal_state: Any


def gradient_step(
    loss_fn: Callable,
    c: TrainCarry,
    tx: optax.GradientTransformation,
    balancer: Balancer,
    target_tau: float,
) -> tuple[TrainCarry, dict]:
    """One balanced gradient step on `loss_fn(params) -> ((main, aux), metrics)`, then the
    EMA target update; metrics gain `losses/grad_norm` (of the balanced gradient)."""
    grads, bal_state, m = balanced_grads(loss_fn, c.params, balancer, c.bal_state)
    params, opt_state = apply_gradients(tx, grads, c.opt_state, c.params)
    target = c.target
    if target is not None:
        target = target_update(target, params, target_tau)  # the one EMA formula
    m["losses/grad_norm"] = optax.tree.norm(grads)
    return TrainCarry(params=params, target=target, opt_state=opt_state, bal_state=bal_state), m


def apply_gradients(tx: optax.GradientTransformation, grads, opt_state, params):
    """(new params, new optimiser state) after one `tx` step on `grads`."""
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state


def target_update(target: Params, params: Params, tau: float) -> Params:
    """A target network's step towards `params`: tau = 1 copies, tau < 1 is a Polyak step.

    optax's tau * params + (1 - tau) * target: the one EMA formula for every target (heads',
    DQN's, PVN's)."""
    return optax.incremental_update(params, target, tau)


# ---------------------------------------------------------------------------- schedules
def annealed_lr(lr, update: Array, total_updates: int, anneal: bool):
    """The learning rate of update `update`: linear to 0 at `total_updates` if `anneal`."""
    frac = 1.0 - update.astype(jnp.float32) / total_updates
    return lr * (frac if anneal else 1.0)


def linear_epsilon(env_steps, start, finish, anneal_steps: int):
    """Exploration rate after `env_steps`: linear from `start` to `finish` over anneal_steps."""
    frac = jnp.clip(env_steps / max(anneal_steps, 1), 0.0, 1.0)
    return start + frac * (finish - start)


def epsilon_greedy(key: PRNGKey, values: Array, epsilon) -> Array:
    """argmax of `values` [..., A], replaced by a uniform action with probability epsilon."""
    k1, k2 = jax.random.split(key)
    a = jnp.argmax(values, -1)
    rand = jax.random.randint(k1, a.shape, 0, values.shape[-1])
    return jnp.where(jax.random.uniform(k2, a.shape) < epsilon, rand, a)


def episode_metrics(done: Array, episode_return: Array, episode_length: Array) -> dict:
    """Sums over finished episodes; the trainer divides them over each logging window."""
    d = done.astype(jnp.float32)
    return {
        "episodes": d.sum(),
        "episode_return_sum": (episode_return * d).sum(),
        "episode_length_sum": (episode_length * d).sum(),
    }


def learned_mean(values, learned=None) -> float:
    """Mean of one run's per-update metric over the updates that took a gradient step.

    `learned` is a bool per update (leading axis of `values`), or None when every update
    learns. A metric a gradient step writes has no value before the first step: NaN, not 0."""
    import numpy as np

    values = np.asarray(values)
    if learned is None or bool(np.all(learned)):
        return float(values.mean())
    learned = np.asarray(learned, bool)
    return float(values[learned].mean()) if learned.any() else float("nan")
