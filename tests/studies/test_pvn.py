"""PVN: successor-measure TD against closed forms, indicator firing rates, the offline path."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import rl_aux  # noqa: F401  (XLA flag before any backend use)
from agents.pvn import PVNPretrainer
from rl_aux.heads.pvn import PVNConfig, pvn_td_error
from rl_aux.networks.network import NetworkConfig
from rl_aux.pvn.indicators import Indicators, quantile_loss
from rl_aux.types import EnvSpec, Transition


def _chain():
    """3-state chain, actions left/right (walls at the ends), every (s, a) once, no ends."""
    s = np.repeat(np.arange(3), 2)
    a = np.tile(np.arange(2), 3)
    s2 = np.clip(s + np.where(a == 1, 1, -1), 0, 2)
    eye = np.eye(3, dtype=np.float32)
    z = np.zeros(6, bool)
    tr = Transition(
        obs=eye[s],
        action=a.astype(np.int32),
        reward=np.zeros(6, np.float32),
        terminated=z,
        truncated=z,
        next_obs=eye[s2],
    )
    P = np.zeros((3, 3))
    for x, x2 in zip(s, s2, strict=True):
        P[x, x2] += 0.5  # uniform-random policy
    return jax.device_put(tr), P, s2.reshape(3, 2)


def test_td_error_uses_current_indicator_and_mean_over_next_actions():
    psi = jnp.zeros((1, 1, 2))
    psi_next = jnp.array([[[1.0, 3.0]]])
    err = pvn_td_error(psi, psi_next, jnp.array([[1.0]]), jnp.array([0]), jnp.array([0.5]))
    np.testing.assert_allclose(err, [[1.0 + 0.5 * 2.0]])  # mean 2, never the max 3


def test_chain_psi_matches_closed_form():
    gamma = 0.9
    tr, P, nxt = _chain()
    spec = EnvSpec("chain", (3,), jnp.float32, 2, 0)
    head = PVNConfig(num_tasks=8, indicator="hash", p=0.5, gamma=gamma, target_tau=0.1)
    pre = PVNPretrainer(NetworkConfig(hidden=()), head, spec, batch_size=64, lr=1e-2)
    state = pre.init(jax.random.PRNGKey(0))
    state, m = jax.jit(lambda s: pre.train(s, tr, 2000))(state)
    eye = jnp.eye(3)
    r = np.asarray(pre.head.indicators(state.params["heads"]["pvn"]["indicator"], eye)[0])
    assert 0 < r.sum() < r.size  # the hash picks non-trivial subsets S_i
    v = np.linalg.solve(np.eye(3) - gamma * P, r)  # (I - gamma P_unif)^-1 1_S, [3, T]
    exact = r[:, :, None] + gamma * v[nxt].transpose(0, 2, 1)  # Psi(x, a) [3, T, A]
    psi = np.asarray(pre.psi(state.params, eye))
    assert np.abs(psi - exact).max() < 1e-2, np.abs(psi - exact).max()
    np.testing.assert_allclose(psi.mean(-1), v, atol=1e-2)


@pytest.mark.parametrize("p", [0.01, 0.05])
def test_rnd_fire_rate_converges_to_p(p):
    obs = jax.random.normal(jax.random.PRNGKey(1), (4096, 16))
    ind = Indicators("rnd", 20, p, (16,), tasks_per_module=10, bias_scale=10.0)
    params = ind.init(jax.random.PRNGKey(2))
    tx = optax.adam(1e-2)

    def step(c, k):
        params, opt = c
        batch = obs[jax.random.randint(k, (256,), 0, obs.shape[0])]
        g = jax.grad(lambda b: quantile_loss(ind.scores({**params, "bias": b}, batch), p))(
            params["bias"]
        )
        upd, opt = tx.update(g, opt)
        return ({**params, "bias": params["bias"] + upd}, opt), None

    (params, _), _ = jax.lax.scan(
        step, (params, tx.init(params["bias"])), jax.random.split(jax.random.PRNGKey(3), 1500)
    )
    rate = np.asarray(ind(params, obs)[0]).mean(0)  # per task, over all states
    assert abs(rate.mean() - p) < 0.01, rate
    # a ReLU score that is 0 on more than 1 - p of the states cannot reach p (a few tasks)
    assert np.mean(np.abs(rate - p) < 0.01) >= 0.9, rate


def test_hash_indicator_fires_on_about_p_of_distinct_frames():
    frames = jax.random.randint(jax.random.PRNGKey(0), (1000, 84, 84, 4), 0, 256, jnp.int32)
    ind = Indicators("hash", 8, 0.01, (84, 84, 4))
    r, _ = jax.jit(ind.__call__)(ind.init(jax.random.PRNGKey(1)), frames.astype(jnp.uint8))
    assert abs(float(r.mean()) - 0.01) < 0.005


def test_four_rooms_dynamics_and_goal():
    from envs.four_rooms import NEXT, NUM_CELLS, FourRooms, uniform_transition_matrix

    assert NUM_CELLS == 104 and NEXT.shape == (104, 4)
    np.testing.assert_allclose(uniform_transition_matrix().sum(1), 1.0)
    goal = int(NEXT[0, 1])  # the cell right of cell 0
    env = FourRooms(goal)
    state = {"cell": jnp.int32(0), "t": jnp.int32(0)}
    state, obs, r, term, trunc = env.step(jax.random.PRNGKey(0), state, 1)
    assert float(r) == 1.0 and bool(term) and not bool(trunc) and obs[..., 1].sum() == 1
    # the up move from cell 0 hits the outer wall and stays
    assert int(NEXT[0, 0]) == 0


def test_rank_floor_is_the_best_d_feature_fit():
    """rank_floor_nrmse: exact for a matrix of rank <= d (+ bias), Eckart-Young otherwise."""
    from experiments.studies.pvn_four_rooms import rank_floor_nrmse

    rng = np.random.default_rng(0)
    low = rng.normal(size=(50, 3)) @ rng.normal(size=(3, 2 * 4)) + rng.normal(size=(2 * 4,))
    assert rank_floor_nrmse(low.reshape(50, 2, 4), 3) < 1e-6
    assert rank_floor_nrmse(low.reshape(50, 2, 4), 2) > 1e-2
    # Eckart-Young: no other rank-d fit of the centred matrix does better
    m = rng.normal(size=(40, 6, 4))
    floor = rank_floor_nrmse(m, 5)
    flat = m.reshape(40, -1)
    c = flat - flat.mean(0)
    other = c @ np.linalg.qr(rng.normal(size=(24, 5)))[0]
    fit = other @ np.linalg.lstsq(other, c, rcond=None)[0]
    assert floor <= np.sqrt(((c - fit) ** 2).mean()) / m.std() + 1e-9


def test_four_rooms_rank64_floor_grows_with_T():
    """With state-only features phi(x) in R^64 the four-rooms Psi [104, T, 4] cannot be fit to
    nRMSE < 0.1 at T = 128 by any network (docs/pvn.md: the fit bar's floor)."""
    from envs.four_rooms import NUM_CELLS
    from experiments.studies.pvn_four_rooms import exact_psi, rank_floor_nrmse

    floors = []
    for T in (8, 64, 128):
        r = (np.random.default_rng(T).random((NUM_CELLS, T)) < 0.05).astype(float)
        floors.append(rank_floor_nrmse(exact_psi(r, 0.95), 64))
    assert floors[0] < 1e-6 and floors[0] < floors[1] < floors[2]
    assert floors[2] > 0.1


def test_td_fixed_point_is_exact_with_tabular_features_and_above_the_projection():
    """td_fixed_point: one-hot features recover the exact Psi; on a d-dim subspace its error is
    never below the best fit in that subspace (the TD floor quoted in docs/pvn.md)."""
    from envs.four_rooms import NUM_CELLS
    from experiments.studies.pvn_four_rooms import best_subspace, exact_psi, td_fixed_point

    r = (np.random.default_rng(3).random((NUM_CELLS, 16)) < 0.05).astype(float)
    exact = exact_psi(r, 0.95)
    tab = np.eye(NUM_CELLS)[:, 1:]  # with the bias column this spans every cell
    assert np.abs(td_fixed_point(tab, r, 0.95) - exact).max() < 1e-8
    phi = best_subspace(exact, 8)
    m = exact.reshape(NUM_CELLS, -1)
    basis = np.concatenate([phi, np.ones((NUM_CELLS, 1))], 1)
    proj = basis @ np.linalg.lstsq(basis, m, rcond=None)[0]
    td = td_fixed_point(phi, r, 0.95).reshape(NUM_CELLS, -1)
    assert np.linalg.norm(td - m) >= np.linalg.norm(proj - m) - 1e-9
    assert np.linalg.norm(td - m) / np.linalg.norm(m) < 1.0


def test_sr_alignment_is_one_on_the_sr_subspace_and_zero_off_it():
    """sr_alignment: 1 for the SR's own top-d singular vectors, 0 for their complement."""
    from envs.four_rooms import NUM_CELLS, uniform_transition_matrix
    from experiments.studies.pvn_four_rooms import sr_alignment

    sr = np.linalg.inv(np.eye(NUM_CELLS) - 0.95 * uniform_transition_matrix())
    u = np.linalg.svd(sr)[0]
    mix = np.random.default_rng(0).normal(size=(16, 16))  # any basis of the same span
    assert sr_alignment(u[:, :16] @ mix, 0.95) > 1 - 1e-9
    assert sr_alignment(u[:, -16:], 0.95) < 1e-9
