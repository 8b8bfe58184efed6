"""The exact greedy-path evaluation of the Fang & Stachenfeld gridworld transfer experiment."""

import numpy as np

from envs.fs_grid import SIZE
from experiments.studies.fs_grid_transfer import greedy_paths, path_metrics

UP, DOWN, LEFT, RIGHT = range(4)  # envs.fs_grid.MOVES order


def _toward(goal):
    """A Q table whose greedy action moves vertically first, then horizontally, to `goal`."""
    q = np.zeros((SIZE * SIZE, 4))
    for c in range(SIZE * SIZE):
        r, col = divmod(c, SIZE)
        a = DOWN if r < goal[0] else UP if r > goal[0] else RIGHT if col < goal[1] else LEFT
        q[c, a] = 1.0
    return q


def test_shortest_policy_is_optimal_and_always_up_arrives_only_from_below():
    goal = (6, 5)
    always_up = np.eye(4)[np.full(SIZE * SIZE, UP)]
    m = path_metrics(np.stack([_toward(goal), always_up]), goal, 150)
    # always up: only the cell right below the goal, (7, 5), gets there (in its 1 shortest step)
    np.testing.assert_allclose(m["success"], [1.0, 1 / 63])
    np.testing.assert_allclose(m["optimality"], [1.0, 1 / 63])
    np.testing.assert_allclose(m["steps_to_goal"][1], (62 * 150 + 1) / 63)


def test_greedy_paths_counts_steps_from_every_start():
    goal = (0, 0)
    steps = greedy_paths(_toward(goal), goal, 150)
    cells = np.arange(1, SIZE * SIZE)  # every non-goal cell, in order
    np.testing.assert_array_equal(steps, cells // SIZE + cells % SIZE)


def test_grid_observation_through_the_small_cnn_with_a_linear_latent():
    """`env.options.obs=grid` + `torso=small_cnn` (their encoder): a [*, 4] latent, not clipped."""
    import jax

    from envs.fs_grid import FSGrid
    from rl_aux.networks.network import NetworkConfig, make_network

    obs = FSGrid(obs="grid").cell_obs()
    assert obs.shape == (64, 10, 10, 1) and float(obs.min()) == -1.0
    cfg = NetworkConfig(
        torso="small_cnn", hidden=(32, 4), linear_out=True, activation="relu", conv="patches"
    )
    net = make_network(cfg, 4, (10, 10, 1), "q")
    params = net.init(jax.random.PRNGKey(0), obs)
    out, _ = net.apply(params, obs)
    assert out["q"].shape == (64, 4) and out["z"].shape == (64, 4)
    assert float(out["z"].min()) < 0.0  # linear latent: negative values survive


def test_bad_fsgrid_obs_option_names_the_field_and_the_choices():
    import pytest

    from envs.registry import check_env_options
    from rl_aux.typed_config import ConfigError

    with pytest.raises(ConfigError, match=r"env.options.obs='pixels'.*onehot, grid"):
        check_env_options("fsgrid/Open8x8", {"obs": "pixels"})
    with pytest.raises(ConfigError, match=r"env.options.shuffle=3.*obs=grid"):
        check_env_options("fsgrid/Open8x8", {"obs": "onehot", "shuffle": 3})


def test_shuffled_grid_observation_is_one_fixed_pixel_permutation():
    """`shuffle=<seed>` (their shuffle_obs): every cell's image goes through the same permutation,
    so the cells stay distinguishable but neighbouring cells no longer light up neighbouring
    pixels; another seed gives another permutation."""
    import numpy as np

    from envs.fs_grid import FSGrid

    plain = np.asarray(FSGrid(obs="grid").cell_obs()).reshape(64, -1)
    shuf = np.asarray(FSGrid(obs="grid", shuffle=0).cell_obs()).reshape(64, -1)
    perm = FSGrid(obs="grid", shuffle=0).perm
    np.testing.assert_array_equal(shuf, plain[:, perm])
    assert not np.array_equal(shuf, plain)
    assert len({row.tobytes() for row in shuf}) == 64  # still one observation per cell
    assert not np.array_equal(perm, FSGrid(obs="grid", shuffle=1).perm)
    agent_pix = shuf.argmax(1)  # where the agent lights up, per cell (row-major)
    assert np.mean(np.abs(np.diff(agent_pix[:8]))) > 2  # a row's cells are scattered


def _summary(tmp_path, name, arms):
    import json

    path = tmp_path / f"{name}.json"
    phases = lambda a: {p: {"auc_per_seed": list(a)} for p in ("phase1", "phase2")}  # noqa: E731
    path.write_text(json.dumps({"arms": {k: phases(v) for k, v in arms.items()}}))
    return str(path)


def test_pooling_concatenates_batches_and_bootstraps_the_difference(tmp_path):
    """Two batches pool to all their seeds; a uniformly better arm's difference CI excludes 0
    (P 0) and an identical arm's difference is 0 with a CI around it."""
    import numpy as np
    import pytest

    from experiments.studies.fs_grid_pool import compare, load_aucs

    rng = np.random.default_rng(0)
    mf = rng.uniform(0.2, 0.6, 20)
    a = _summary(tmp_path, "a", {"mf": mf[:10], "better": mf[:10] + 0.2, "same": mf[:10]})
    b = _summary(tmp_path, "b", {"mf": mf[10:], "better": mf[10:] + 0.2, "same": mf[10:]})
    aucs = load_aucs([a, b])
    np.testing.assert_allclose(aucs["mf"]["phase1"], mf)
    res = compare(aucs, reps=2000)
    better, same = res["better"]["phase1"], res["same"]["phase2"]
    assert better["n_seeds"] == 20 and better["diff_mean"] == pytest.approx(0.2)
    assert better["diff_ci95"][0] > 0 and better["p_diff_le_0"] == 0.0
    assert same["diff_mean"] == 0.0 and same["diff_ci95"][0] < 0 < same["diff_ci95"][1]
    lo, hi = res["mf"]["phase1"]["auc_ci95"]
    assert lo < mf.mean() < hi and "diff_mean" not in res["mf"]["phase1"]
    with pytest.raises(ValueError, match="--baseline 'model_free'.*mf, better, same"):
        compare(aucs, baseline="model_free")
    short = _summary(tmp_path, "c", {"mf": mf[:3], "better": mf[:2], "same": mf[:3]})
    with pytest.raises(ValueError, match="different seed counts"):
        load_aucs([a, short])


def test_head_pre_activation_applies_the_activation_to_h_before_the_q_layers():
    """Their Q network starts with the activation (act -> Dense 16 -> act -> Dense): with it, the
    Q values see relu(h), so h and relu(h) give the same Q; without it they differ."""
    import jax
    import jax.numpy as jnp

    from rl_aux.networks.network import AgentNetwork, NetworkConfig, make_network

    h = jax.random.normal(jax.random.PRNGKey(0), (16, 4))
    obs = jnp.zeros((16, 8))
    for pre, same in ((True, True), (False, False)):
        cfg = NetworkConfig(
            hidden=(32, 4), linear_out=True, activation="relu", head_hidden=(16,),
            head_pre_activation=pre,
        )  # fmt: skip
        net = make_network(cfg, 4, (8,), "q")
        params = net.init(jax.random.PRNGKey(1), obs)
        q = lambda x: net.apply(params, obs, x, x, method=AgentNetwork.outputs)["q"]  # noqa: B023
        assert bool(jnp.allclose(q(h), q(jax.nn.relu(h)))) == same
