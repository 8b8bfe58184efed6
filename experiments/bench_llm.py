"""`rl-aux bench --suite llm`: the subgoal reward's cost in the training loop, side by side.

Recurrent PPO (experiment minihack_ppo) on MiniHack-KeyRoom-Fixed-S5, in one process, four
arms over the same config: `env` (no reward module), `ellm` (captions -> ids -> MiniLM matcher
table -> r_aux, the LLM-derived subgoal reward that runs locally), `judge` (the CALM judge arm of
experiment=llm_keyroom_ppo in replay mode, on a copy of the shipped cache of the Gemma 3 270M
judge's answers for KeyRoom: no server; a caption not in it pays 0 and is counted) and
`keyroom_oracle` (exact labels, same table lookup). Each arm is warmed first (compilation; the
tables and the embedding cache fill: "cache warm"), then the arms are timed in interleaved rounds
and the median env steps/s per arm is reported. Bar (issue 7): ellm and judge >= 0.9x env.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time

TASK = "minihack/KeyRoom-Fixed-S5-v0"
ARMS = ("env", "ellm", "judge", "keyroom_oracle")
# the judge's answers for every caption of the 3-seed KeyRoom run (docs/llm-subgoal-rewards.md)
JUDGE_CACHE = os.path.join(os.path.dirname(__file__), "data", "llm", "keyroom_judge_cache.sqlite")


def judge_overrides(cache_path: str) -> list[str]:
    """The `judge` variant of experiment=llm_keyroom_ppo, replayed from `cache_path`."""
    from experiments.config import compose

    variant = compose(["experiment=llm_keyroom_ppo"])["variants"]["judge"]
    keep = [o for o in variant if not o.startswith("llm.")]
    return [*keep, "llm.mode=replay", f"llm.cache_path={cache_path}"]


def worker(kind: str, rest: list[str]) -> dict:
    """Run the measurement in this process (through `experiments.bench --_worker`)."""
    if kind != "llm_ppo":
        raise ValueError(f"unknown bench worker {kind!r}")
    return _ppo(int(rest[0]), int(rest[1]), int(rest[2]))


def _ppo(warm_updates: int, updates: int, rounds: int) -> dict:
    import jax

    from agents.host_loop import HostPPO, host_reward
    from experiments.config import load_config
    from experiments.train import build_agent

    tmp = tempfile.mkdtemp(prefix="rl-aux-bench-llm-")
    shutil.copy(JUDGE_CACHE, f"{tmp}/judge.sqlite")
    base = ["experiment=minihack_ppo", f"env={TASK}"]
    extra = {
        "env": [],
        "ellm": ["reward=ellm", "llm.mode=off", f"llm.cache_path={tmp}/cache.sqlite"],
        "judge": judge_overrides(f"{tmp}/judge.sqlite"),
        "keyroom_oracle": ["reward=keyroom_oracle"],
    }
    loops, envs, sources, states = {}, [], {}, {}
    for arm in ARMS:
        cfg = load_config([*base, *extra[arm]])
        env, agent = build_agent(cfg)
        envs.append(env)
        source, reward_fn = host_reward(cfg, env)
        sources[arm] = source
        loops[arm] = HostPPO(agent, env, reward_fn, env.opts.overlap, source)
        states[arm] = agent.init(jax.random.PRNGKey(0), agent.default_hparams())
    spu = agent.steps_per_update
    sps: dict[str, list[float]] = {arm: [] for arm in ARMS}
    try:
        t0 = time.perf_counter()
        for arm in ARMS:  # compile, fill the label table and the embedding cache
            states[arm] = loops[arm].train(states[arm], warm_updates, jax.random.PRNGKey(1))
        warm_s = time.perf_counter() - t0
        seen = {}  # captions known when timing starts: new ones in the rounds are embedded/judged
        for arm in ("ellm", "judge"):
            sources[arm].annotator.drain(120)
            seen[arm] = sources[arm].metrics()["llm/captions"]
        for r in range(rounds):
            order = ARMS if r % 2 == 0 else ARMS[::-1]
            for arm in order:
                marks: list[float] = []
                states[arm] = loops[arm].train(
                    states[arm],
                    updates + 1,
                    jax.random.PRNGKey(2 + r),
                    lambda i, m, roll, dt, marks=marks: marks.append(time.perf_counter()),
                )
                # from the end of the first update (env reset + an unoverlapped rollout) on
                sps[arm].append(spu * (len(marks) - 1) / (marks[-1] - marks[0]))
        metrics = {arm: sources[arm].metrics() for arm in ("ellm", "judge")}
        for arm in metrics:
            metrics[arm]["new_captions_timed"] = metrics[arm]["llm/captions"] - seen[arm]
    finally:
        for env in envs:
            env.close()
        for s in sources.values():
            if s is not None and hasattr(s, "close"):
                s.close()
    med = {arm: statistics.median(v) for arm, v in sps.items()}
    return {
        "task": TASK,
        "steps_per_update": spu,
        "warm_s": warm_s,
        "rounds": rounds,
        "updates_per_round": updates,
        "steps_per_s": med,
        "steps_per_s_all": sps,
        "ratio_ellm": med["ellm"] / med["env"],
        "ratio_judge": med["judge"] / med["env"],
        "ratio_oracle": med["keyroom_oracle"] / med["env"],
        "llm_metrics": metrics,
        "cpu_count": os.cpu_count(),
    }


def run(scale: float, run_worker) -> dict:
    warm = max(int(8 * scale), 2)
    updates = max(int(6 * scale), 2)
    rounds = max(int(3 * scale), 3)
    out = run_worker(["llm_ppo", str(warm), str(updates), str(rounds)], timeout=3600, hang_s=900)
    if "error" in out:
        raise RuntimeError(f"the llm bench worker failed: {out['error']}")
    return out


def format_result(res: dict) -> str:
    s = res["steps_per_s"]
    lines = [
        f"{'arm':<16} {'env steps/s':>12} {'ratio vs env':>13}",
        *(f"{a:<16} {s[a]:>12.0f} {s[a] / s['env']:>12.2f}x" for a in ARMS),
        f"(median of {res['rounds']} interleaved rounds x {res['updates_per_round']} updates of "
        f"{res['steps_per_update']} steps; bar: ellm, judge >= 0.90x env)",
        f"judge arm: {res['llm_metrics']['judge']['llm/misses']} cache misses (pay 0), "
        f"{res['llm_metrics']['judge']['llm/captions']} captions",
        "captions first seen in the timed rounds (labelled there): "
        + ", ".join(
            f"{a} {res['llm_metrics'][a].get('new_captions_timed', '?')}" for a in ("ellm", "judge")
        ),
    ]
    return "\n".join(lines)
