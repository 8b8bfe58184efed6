"""PVN in four rooms, with an exact ground truth (docs/pvn.md).

1. 100k transitions of the uniform-random policy in reward-free four rooms (rl_aux/dataset.py
   format, so `rl-aux train experiment=pvn_pretrain` can read them too).
2. PVN pre-training for each T (seeds vmapped): d = 64 ELU features, rnd MLP indicators.
3. Exact check: Psi learned vs (I - gamma P_unif)^-1 1_{S_i} on all 104 cells x 4 actions.
4. Linear evaluation on 16 held-out goal cells: double DQN (n = 5) trains only a linear Q on
   frozen phi(x) (the env emits phi(x), as the paper code's EncoderWrapper), for each pre-trained
   torso, a random frozen torso of the same shape, and one-hot (tabular) features; seeds and
   goals vmapped. Writes run dirs (config.yaml + metrics.csv) that `rl-aux plot` reads.

    PYTHONPATH=. nice -n 15 python -m experiments.studies.pvn_four_rooms --out runs/pvn_four_rooms

LSPI's ridge is chosen per feature set and seed on 16 *validation* goal cells (disjoint from the
16 reported ones) among `--ridges`: features of different scales need different ridges (at a
fixed 1e-3 the pre-trained features looked worse than random ones). `--reuse-features` re-runs
only the linear evaluation on the features a previous run saved in `--out`.

The defaults (lr 3e-3) are the ones that fit T = 128 closest to TD's own limit; a smaller lr stops
well short of it (docs/results/pvn.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg
import yaml

import rl_aux  # noqa: F401  (XLA flag first)
from agents.dqn import DQN, DQNConfig
from agents.pvn import PVNPretrainer
from envs.core import JaxVecEnv
from envs.four_rooms import NEXT, NUM_CELLS, FourRooms, uniform_transition_matrix
from rl_aux.dataset import TransitionWriter, load_transitions
from rl_aux.evaluation import evaluate
from rl_aux.heads.pvn import PVNConfig
from rl_aux.networks.network import NetworkConfig
from rl_aux.types import Transition

NETWORK = NetworkConfig(torso="mlp", hidden=(64,), activation="relu", init="lecun")


def collect(path: str, num: int, seed: int = 0) -> None:
    """`num` uniform-random transitions of reward-free four rooms into a dataset dir."""
    n_envs = 100
    env = JaxVecEnv(FourRooms(-1), n_envs)

    def step(c, k):
        st, obs = c
        k_a, k_e = jax.random.split(k)
        a = jax.random.randint(k_a, (n_envs,), 0, 4)
        st, ts = env.step(st, a, k_e)
        tr = Transition(
            obs=obs,
            action=a,
            reward=ts.reward,
            terminated=ts.terminated,
            truncated=ts.truncated,
            next_obs=ts.extras["next_obs"],
        )
        return (st, ts.obs), tr

    k0, k1 = jax.random.split(jax.random.PRNGKey(seed))
    st, ts = env.reset(k0)
    _, tr = jax.jit(lambda: jax.lax.scan(step, (st, ts.obs), jax.random.split(k1, num // n_envs)))()
    flat = jax.tree.map(lambda x: np.asarray(x).reshape((-1,) + x.shape[2:]), tr)
    w = TransitionWriter(
        path,
        (11, 11, 2),
        "float32",
        4,
        "four_rooms/reward_free",
        "uint8",
        source="uniform-random policy, experiments/studies/pvn_four_rooms.py",
    )
    w.write(
        {
            f.name: getattr(flat, f.name)
            for f in dataclasses.fields(Transition)
            if f.name != "extras"
        }
    )
    w.close()


def head_config(T: int, args) -> PVNConfig:
    return PVNConfig(
        num_tasks=T,
        indicator="rnd",
        p=args.p,
        tasks_per_module=min(T, 32),
        rnd_hidden=64,
        gamma=args.gamma,
        bias_scale=10.0,
        rnd_relu=False,  # one-hot-like inputs leave many ReLU scores at 0: thresholds stall
        target_tau=args.tau,
    )


def pretrain(data: Transition, spec, T: int, args, steps: int):
    pre = PVNPretrainer(
        NETWORK,
        head_config(T, args),
        spec,
        batch_size=args.batch,
        lr=args.lr,
        adam_eps=1.5e-4,
        warmup_steps=args.warmup,
        qr_steps=args.warmup,  # thresholds fixed once TD starts: the exact check needs fixed S_i
        decay_steps=args.decay,
    )
    keys = jnp.stack([jax.random.PRNGKey(1000 * T + s) for s in range(args.seeds)])
    state = jax.jit(jax.vmap(pre.init))(keys)
    if steps:
        run = jax.jit(jax.vmap(lambda s, d: pre.train(s, d, steps), in_axes=(0, None)))
        state, m = run(state, data)
        m = jax.device_get(m)
    else:
        m = {}
    return pre, state.params, m


def exact_psi(r: np.ndarray, gamma: float) -> np.ndarray:
    """Exact successor measure [cells, T, actions] of indicators r [cells, T] under the uniform
    policy: 1_S(x) + gamma * (I - gamma P)^-1 1_S at each action's next cell."""
    inv = np.linalg.inv(np.eye(NUM_CELLS) - gamma * uniform_transition_matrix())
    return r[:, :, None] + gamma * (inv @ r)[NEXT].transpose(0, 2, 1)


def rank_floor_nrmse(exact: np.ndarray, d: int) -> float:
    """Smallest nRMSE any Psi(x, a, S_i) = phi(x)^T w_{a,i} + b_{a,i} with d features can reach.

    phi depends on the state only, so Psi as a [cells, T * actions] matrix has rank <= d after
    removing the column means (the bias): the truncated SVD (Eckart-Young) is the best fit.
    """
    m = exact.reshape(exact.shape[0], -1)
    centred = m - m.mean(0)
    u, s, vt = np.linalg.svd(centred, full_matrices=False)
    err = centred - (u[:, :d] * s[:d]) @ vt[:d]
    return float(np.sqrt((err**2).mean()) / exact.std())


def best_subspace(exact: np.ndarray, d: int) -> np.ndarray:
    """[cells, d] basis of the best d-feature fit of Psi (top left singular vectors, centred)."""
    m = exact.reshape(exact.shape[0], -1)
    return np.linalg.svd(m - m.mean(0), full_matrices=False)[0][:, :d]


def td_fixed_point(phi: np.ndarray, r: np.ndarray, gamma: float) -> np.ndarray:
    """Psi [cells, T, actions] at the TD fixed point (LSTD) of the PVN rule with features
    [phi(x), 1] per action, all (cell, action) pairs weighted equally (the random walk's).

    Solves sum_{x,a} f(x,a) (f(x,a) - gamma mean_a' f(NEXT[x,a], a'))^T W = sum f(x,a) r(x):
    where TD can get to at best with these features, as opposed to the projection.
    """
    n = phi.shape[0]
    phi = np.concatenate([phi, np.ones((n, 1))], 1)
    d, A = phi.shape[1], NEXT.shape[1]
    lhs = np.kron(np.eye(A), phi.T @ phi)
    for a in range(A):  # - gamma / A * phi^T phi(next_a) in every column block of row block a
        lhs[a * d : (a + 1) * d] -= gamma / A * np.tile(phi.T @ phi[NEXT[:, a]], (1, A))
    w = np.linalg.solve(lhs, np.tile(phi.T @ r, (A, 1))).reshape(A, d, -1)
    return np.einsum("xd,adt->xta", phi, w)


def exact_check(pre: PVNPretrainer, params, gamma: float) -> dict:
    """Normalised RMSE of learned Psi vs the exact successor measure, per seed, beside its
    floors: the best d-feature fit (`rank_floor_*`), TD's fixed point on that fit's subspace
    (`td_floor_rel_l2`) and on the learned features (`td_learned_phi_rel_l2`)."""
    obs = FourRooms.cell_obs()
    keys = ("nrmse", "rel_l2", "fire_rate", "rank_floor_nrmse", "rank_floor_rel_l2")
    out = {k: [] for k in keys + ("td_floor_rel_l2", "td_learned_phi_rel_l2")}
    d = int(np.asarray(pre.features(jax.tree.map(lambda x: x[0], params), obs)).shape[-1])
    for s in range(jax.tree.leaves(params)[0].shape[0]):
        p = jax.tree.map(lambda x: x[s], params)
        r = np.asarray(pre.head.indicators(p["heads"]["pvn"]["indicator"], obs)[0])  # [104, T]
        exact = exact_psi(r, gamma)  # [104, T, 4]
        psi = np.asarray(pre.psi(p, obs))
        err = psi - exact
        out["nrmse"].append(float(np.sqrt((err**2).mean()) / exact.std()))
        out["rel_l2"].append(float(np.linalg.norm(err) / np.linalg.norm(exact)))
        out["fire_rate"].append(float(r.mean()))
        floor = rank_floor_nrmse(exact, d)
        out["rank_floor_nrmse"].append(floor)
        rel = np.linalg.norm(exact)
        out["rank_floor_rel_l2"].append(floor * exact.std() * np.sqrt(exact.size) / rel)
        r64 = r.astype(np.float64)
        td_best = td_fixed_point(best_subspace(exact, d), r64, gamma)
        out["td_floor_rel_l2"].append(float(np.linalg.norm(td_best - exact) / rel))
        phi = np.asarray(pre.features(p, obs), np.float64)
        td_phi = td_fixed_point(phi, r64, gamma)
        out["td_learned_phi_rel_l2"].append(float(np.linalg.norm(td_phi - exact) / rel))
    return out


def sr_alignment(table: np.ndarray, gamma: float) -> float:
    """Mean cos^2 of the principal angles between span(phi) [cells, d] and the top-d left
    singular vectors of the SR (I - gamma P_unif)^-1: 1 = the same subspace (the PVF claim);
    a random d-dim subspace of R^cells scores d / cells on average."""
    sr = np.linalg.inv(np.eye(NUM_CELLS) - gamma * uniform_transition_matrix())
    d = np.linalg.matrix_rank(table)
    top = np.linalg.svd(sr)[0][:, :d]
    return float(np.mean(np.cos(scipy.linalg.subspace_angles(table, top)) ** 2))


def linear_eval(tables: jnp.ndarray, goals: np.ndarray, args) -> np.ndarray:
    """Success rate [S, G, n_evals] of linear double DQN on frozen features tables [S, 104, d]."""
    cfg = DQNConfig(
        num_envs=4,
        buffer_size=20_000,
        batch_size=64,
        learning_starts=1_000,
        gamma=0.95,
        n_step=5,
        double_q=True,
        target_update_interval=500,
        eps_start=1.0,
        eps_finish=0.05,
        eps_anneal_steps=args.eval_steps // 2,
        lr=args.eval_lr,
        adam_eps=1.5e-4,
        network=NetworkConfig(torso="mlp", hidden=(), init="lecun"),
    )
    n_evals = args.n_evals
    upc = args.eval_steps // cfg.num_envs // n_evals

    def one(table, goal, key):
        env = JaxVecEnv(FourRooms(goal, obs_table=table), cfg.num_envs)
        eval_env = JaxVecEnv(FourRooms(goal, obs_table=table), 64)
        agent = DQN(cfg, env, [], total_updates=upc * n_evals)
        k0, k1 = jax.random.split(key)
        state = agent.init(k0, agent.default_hparams())

        def chunk(st, k):
            st, _ = agent.train_chunk(st, upc)
            return st, evaluate(agent, eval_env, st.params, k, 0.0, 100).mean()

        _, succ = jax.lax.scan(chunk, state, jax.random.split(k1, n_evals))
        return succ

    S = tables.shape[0]
    keys = jax.random.split(jax.random.PRNGKey(7), S * len(goals)).reshape(S, len(goals), -1)
    fn = jax.vmap(jax.vmap(one, in_axes=(None, 0, 0)), in_axes=(0, None, 0))
    return np.asarray(jax.jit(fn)(tables, jnp.asarray(goals), keys)), upc * cfg.num_envs


def lspi(table: np.ndarray, goal: int, gamma: float, iters: int = 20, ridge: float = 1e-3):
    """Success rate of the greedy policy of LSPI (Lagoudakis & Parr 2003) with Q(x, a) linear in
    frozen features [phi(x), 1], on all (cell, action) pairs of four rooms weighted uniformly."""
    n, d = table.shape[0], table.shape[1] + 1
    phi = np.concatenate([table, np.ones((n, 1))], 1)
    starts = np.array([x for x in range(n) if x != goal])
    xs = np.repeat(starts, 4)
    acts = np.tile(np.arange(4), len(starts))
    nxt = NEXT[xs, acts]
    term = nxt == goal
    r = term.astype(float)

    def feat(x, a):  # one-hot(a) (x) phi(x), [m, 4 d]
        out = np.zeros((len(x), 4, d))
        out[np.arange(len(x)), a] = phi[x]
        return out.reshape(len(x), -1)

    f = feat(xs, acts)
    w = np.zeros(4 * d)
    for _ in range(iters):
        q_next = phi[nxt] @ w.reshape(4, d).T  # [m, 4]
        f_next = feat(nxt, q_next.argmax(1)) * (1.0 - term)[:, None]
        A = f.T @ (f - gamma * f_next) + ridge * np.eye(4 * d)
        w_new = np.linalg.solve(A, f.T @ r)
        if np.abs(w_new - w).max() < 1e-8:
            w = w_new
            break
        w = w_new
    greedy = (phi @ w.reshape(4, d).T).argmax(1)  # [n]
    cell = starts.copy()
    hit = np.zeros(len(starts), bool)
    for _ in range(100):
        cell = np.where(hit, cell, NEXT[cell, greedy[cell]])
        hit |= cell == goal
    return float(hit.mean())


def lspi_validated(tab: np.ndarray, goals, val_goals, args):
    """[seeds, goals, 1] success of LSPI with each seed's ridge picked on the validation goals;
    also, per seed, the validation success of every ridge and the one chosen, for the record."""
    ridges = [float(r) for r in args.ridges.split(",")]
    succ, table = [], {}
    for s in range(len(tab)):
        val = [np.mean([lspi(tab[s], int(g), 0.95, ridge=r) for g in val_goals]) for r in ridges]
        best = ridges[int(np.argmax(val))]
        succ.append([[lspi(tab[s], int(g), 0.95, ridge=best)] for g in goals])
        table[str(s)] = {"val": dict(zip(map(str, ridges), val, strict=True)), "chosen": best}
    return np.array(succ), table


def write_run(path: str, label: str, succ: np.ndarray, step_per_eval: int, extra: dict) -> None:
    """A run dir `rl-aux plot` reads: eval/success (mean over goals) per seed and eval step."""
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "config.yaml"), "w") as f:
        yaml.safe_dump(
            {"label": label, "env": {"name": "four_rooms/16 held-out goals"}, **extra}, f
        )
    rows = ["global_step,seed,grid,eval/success"]
    for s in range(succ.shape[0]):
        for e in range(succ.shape[2]):
            rows.append(f"{(e + 1) * step_per_eval},{s},0,{succ[s, :, e].mean():.6f}")
    with open(os.path.join(path, "metrics.csv"), "w") as f:
        f.write("\n".join(rows) + "\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="runs/pvn_four_rooms")
    ap.add_argument("--tasks", default="8,32,64,128")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--transitions", type=int, default=100_000)
    ap.add_argument("--steps", type=int, default=20_000)
    ap.add_argument("--warmup", type=int, default=2_000)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--p", type=float, default=0.05)
    ap.add_argument("--gamma", type=float, default=0.95)
    ap.add_argument("--tau", type=float, default=0.01)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--decay", type=int, default=0, help="lr decay steps (0 = constant)")
    ap.add_argument("--eval-steps", type=int, default=40_000)
    ap.add_argument("--eval-lr", type=float, default=1e-3)
    ap.add_argument("--n-evals", type=int, default=10)
    ap.add_argument("--goals", type=int, default=16)
    ap.add_argument("--tabular", action="store_true", help="also one-hot (tabular) features")
    ap.add_argument("--linear", default="lspi", choices=("lspi", "dqn"))
    ap.add_argument("--activation", default="elu", choices=("relu", "elu", "tanh"))
    ap.add_argument("--ridges", default="0.001,0.01,0.1,1,10", help="LSPI ridge candidates")
    ap.add_argument("--reuse-features", action="store_true", help="load features_T*.npz")
    args = ap.parse_args(argv)
    global NETWORK
    NETWORK = dataclasses.replace(NETWORK, activation=args.activation)
    os.makedirs(args.out, exist_ok=True)
    data_dir = os.path.join(args.out, "data")
    if not os.path.exists(os.path.join(data_dir, "meta.json")):
        collect(data_dir, args.transitions)
    data, _ = load_transitions(data_dir)
    data = jax.device_put(data)
    spec = FourRooms().spec
    cells = np.random.default_rng(123).permutation(NUM_CELLS)
    goals = np.random.default_rng(123).choice(NUM_CELLS, args.goals, replace=False)
    val_goals = np.array([c for c in cells if c not in set(goals.tolist())][: args.goals])
    results = {"args": vars(args), "goals": goals.tolist(), "exact": {}, "linear": {}}
    results["val_goals"] = val_goals.tolist()
    old = os.path.join(args.out, "results.json")
    if args.reuse_features and os.path.exists(old):  # keep the exact check of the saved run
        results["exact"] = json.load(open(old)).get("exact", {})
    tables = {}
    cell_obs = FourRooms.cell_obs()
    for T in [int(t) for t in args.tasks.split(",")]:
        t0 = time.time()
        saved = os.path.join(args.out, f"features_T{T}.npz")
        if "random" not in tables:  # a random frozen torso of the same shape (0 steps)
            pre, p0, _ = pretrain(data, spec, T, args, 0)
            tables["random"] = jax.vmap(pre.features, in_axes=(0, None))(p0, cell_obs)
        if args.reuse_features:
            tables[f"pvn_T{T}"] = jnp.asarray(np.load(saved)["phi"])
            continue
        pre, params, m = pretrain(data, spec, T, args, args.steps)
        np.savez(
            saved,
            **{"phi": np.asarray(jax.vmap(pre.features, in_axes=(0, None))(params, cell_obs))},
        )
        ex = exact_check(pre, params, args.gamma)
        ex["td_final"] = np.asarray(m["td"]).tolist()
        ex["pretrain_s"] = time.time() - t0
        results["exact"][T] = ex
        print(
            f"T={T}: nrmse {np.mean(ex['nrmse']):.4f} +- {np.std(ex['nrmse']):.4f} "
            f"(rank-{NETWORK.hidden[-1]} floor {np.mean(ex['rank_floor_nrmse']):.4f}) "
            f"rel_l2 {np.mean(ex['rel_l2']):.4f} (floor {np.mean(ex['rank_floor_rel_l2']):.4f}, "
            f"TD on the best subspace {np.mean(ex['td_floor_rel_l2']):.4f}, on the learned phi "
            f"{np.mean(ex['td_learned_phi_rel_l2']):.4f}) fire {np.mean(ex['fire_rate']):.4f} "
            f"({ex['pretrain_s']:.0f}s)",
            flush=True,
        )
        tables[f"pvn_T{T}"] = jax.vmap(pre.features, in_axes=(0, None))(params, cell_obs)
    if args.tabular:
        eye = jnp.eye(NUM_CELLS)
        tables["tabular"] = jnp.broadcast_to(eye, (args.seeds, NUM_CELLS, NUM_CELLS))
    for name, tab in tables.items():
        align = [sr_alignment(np.asarray(t, np.float64), args.gamma) for t in tab]
        results.setdefault("sr_alignment", {})[name] = align
        print(f"{name}: alignment with the SR's top singular vectors {np.mean(align):.3f}")
    for name, tab in tables.items():
        t0 = time.time()
        if args.linear == "lspi":
            succ, ridge_table = lspi_validated(np.asarray(tab, np.float64), goals, val_goals, args)
            results.setdefault("lspi_ridges", {})[name] = ridge_table
            per = 1
        else:
            succ, per = linear_eval(tab, goals, args)
        final = succ[:, :, -1].mean(1)  # per seed, mean over the 16 goals
        results["linear"][name] = {
            "final_per_seed": final.tolist(),
            "curve": succ.mean((0, 1)).tolist(),
        }
        write_run(os.path.join(args.out, "linear", name), name, succ, per, {"features": name})
        print(
            f"linear eval {name}: final success {final.mean():.3f} (per seed "
            f"{np.round(final, 3).tolist()}) ({time.time() - t0:.0f}s)",
            flush=True,
        )
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
