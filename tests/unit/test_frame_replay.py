"""Frame-deduplicated replay: stacks rebuilt at sample time equal the env's stacked
observations (never mixing episodes, across buffer wrap-around), n-step targets equal the
dense replay's, and each transition costs <= 1.1 x 84 x 84 bytes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rl_aux  # noqa: F401
from rl_aux.frame_replay import (
    frame_replay_add,
    frame_replay_gather,
    frame_replay_init,
    frame_replay_sample,
)
from rl_aux.replay import replay_add, replay_init
from rl_aux.types import Transition

pytest.importorskip("ale_py")


@pytest.fixture(scope="module")
def rollout():
    """160 steps of 2 Breakout envs with 20-step episodes, into a 100-row frame replay (it
    wraps) and a dense replay of the same rows."""
    from envs.atari import AtariConfig, AtariVecEnv

    env = AtariVecEnv("Breakout", 2, AtariConfig(max_frames=4 * 20))
    rows, steps = 100, 160

    @jax.jit
    def run(key):
        state, ts = env.reset(key)
        ex = Transition(
            obs=ts.obs,
            action=jnp.zeros(2, jnp.int32),
            reward=ts.reward,
            terminated=ts.terminated,
            truncated=ts.truncated,
            next_obs=ts.obs,
        )
        fr, dense = frame_replay_init(ex, rows), replay_init(ex, rows)

        def body(c, k):
            state, obs, fr, dense = c
            k1, k2 = jax.random.split(k)
            a = jax.random.randint(k1, (2,), 0, env.spec.num_actions)
            state, ts = env.step(state, a, k2)
            tr = Transition(
                obs=obs,
                action=a,
                reward=ts.reward,
                terminated=ts.terminated,
                truncated=ts.truncated,
                next_obs=ts.extras["next_obs"],
            )
            return (state, ts.obs, frame_replay_add(fr, tr), replay_add(dense, tr)), ts.done

        (_, _, fr, dense), done = jax.lax.scan(
            body, (state, ts.obs, fr, dense), jax.random.split(key, steps)
        )
        return fr, dense, done

    fr, dense, done = run(jax.random.PRNGKey(0))
    assert int(np.asarray(done).sum()) >= 15  # many episode boundaries inside the buffer
    return fr, dense


def test_rebuilt_stacks_equal_env_observations(rollout):
    fr, dense = rollout
    cap, n = fr.first.shape
    j, env = np.meshgrid(np.arange(3, cap - 1), np.arange(n), indexing="ij")
    j, env = jnp.asarray(j.ravel()), jnp.asarray(env.ravel())
    tr, disc = jax.jit(frame_replay_gather, static_argnums=(3,))(fr, j, env, 1, 0.99)
    start = (int(fr.pos) - int(fr.size)) % cap
    row = (start + np.asarray(j)) % cap
    want_obs = np.asarray(dense.data.obs)[row, np.asarray(env)]
    want_next = np.asarray(dense.data.next_obs)[row, np.asarray(env)]
    np.testing.assert_array_equal(np.asarray(tr.obs), want_obs)
    np.testing.assert_array_equal(np.asarray(tr.next_obs), want_next)
    # episode starts inside the checked rows: their stacks are zero-padded, not the old episode's
    starts = np.asarray(fr.first)[row, np.asarray(env)]
    assert starts.sum() >= 5
    assert np.all(np.asarray(tr.obs)[starts][..., :3] == 0)
    np.testing.assert_array_equal(
        np.asarray(tr.action), np.asarray(dense.data.action)[row, np.asarray(env)]
    )
    done = np.asarray(dense.data.terminated | dense.data.truncated)[row, np.asarray(env)]
    assert done.sum() >= 5  # final frames came from the ring
    np.testing.assert_allclose(
        np.asarray(disc), 0.99 * (1 - np.asarray(dense.data.terminated)[row, np.asarray(env)])
    )


def test_nstep_targets_match_a_direct_walk(rollout):
    """n = 3: return, discount and bootstrap observation equal a plain walk over the dense
    buffer that stops at the first episode end; sampled batches have the right shapes."""
    fr, dense = rollout
    cap, n = fr.first.shape
    gamma, n_step = 0.9, 3
    j, env = np.meshgrid(np.arange(3, cap - n_step), np.arange(n), indexing="ij")
    j, env = j.ravel(), env.ravel()
    tr, disc = jax.jit(frame_replay_gather, static_argnums=(3,))(
        fr, jnp.asarray(j), jnp.asarray(env), n_step, gamma
    )
    start = (int(fr.pos) - int(fr.size)) % cap
    d = jax.tree.map(np.asarray, dense.data)
    tr, disc = jax.tree.map(np.asarray, (tr, disc))
    for i in range(len(j)):
        ret, g = 0.0, 1.0
        for k in range(n_step):
            r = (start + j[i] + k) % cap
            ret += g * d.reward[r, env[i]]
            g *= gamma
            if d.terminated[r, env[i]] or d.truncated[r, env[i]] or k == n_step - 1:
                break
        assert np.isclose(float(tr.reward[i]), ret), i
        assert np.isclose(float(disc[i]), g * (1 - d.terminated[r, env[i]])), i
        np.testing.assert_array_equal(tr.next_obs[i], d.next_obs[r, env[i]])
    a, da = frame_replay_sample(fr, jax.random.PRNGKey(0), 64, n_step, gamma)
    assert a.obs.shape == (64, 84, 84, 4) and a.next_obs.dtype == jnp.uint8
    assert da.shape == (64,)


def test_bytes_per_transition(rollout):
    fr, _ = rollout
    cap, n = fr.first.shape
    total = sum(x.nbytes for x in jax.tree.leaves(fr))
    assert total / (cap * n) <= 1.1 * 84 * 84, total / (cap * n)
