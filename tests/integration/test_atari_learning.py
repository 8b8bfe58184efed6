"""Atari-100k learning check (slow, CPU-heavy: hours on 2 cores): PPO and DQN on Breakout,
100k agent steps, 2 vmapped seeds each; the greedy evaluation return must beat the uniform
random policy's (about 1.7, Badia et al. 2020) in both seeds.

Run: pytest -m slow tests/integration/test_atari_learning.py
(see docs/atari.md for measured wall times)
"""

import pytest

pytest.importorskip("ale_py")

RANDOM_BREAKOUT = 1.7

COMMON = [
    "total_timesteps=100000",
    "num_seeds=2",
    "eval.episodes=8",
    "eval.max_steps=4500",  # 18k frames: a greedy policy that never serves cannot stall eval
    "eval.every=20000",
    "logger.log_interval=10240",
    "logger.progress=false",
]

CASES = {
    # Atari-100k scale for PPO (CleanRL's defaults are for 10M steps; docs/atari.md has the
    # settings that failed): CleanRL's own env setting of a life loss ending the learner's episode
    # (evaluation still scores whole games), 8 envs x 32 steps per update (390 updates, not 97),
    # entropy 0.01 annealed to 0 with a constant lr: a constant 0.01 leaves the mode's FIRE in a
    # near-tie at the serve, a constant 0.001 collapses on some seeds. Picked before seeing any
    # seed's result; passed on seeds 0-3 (docs/atari.md, sixth attempt)
    "ppo": [
        "experiment=atari_ppo",
        "agent.num_steps=32",
        "agent.ent_coef_end=0.0",
        "agent.anneal_lr=false",
        "env.options.episodic_life=true",
    ],
    # Atari-100k scale for DQN (the Nature/Dopamine values are for 50M frames): a buffer holding
    # the whole run, DrQ(eps)-style fast start (Agarwal et al. 2021: n = 10, lr 1e-4, learning
    # after 1.6k steps, epsilon down to 0.01 over the first 5k), target copy every 2k env steps
    "dqn": [
        "experiment=atari_dqn",
        "agent.buffer_size=100000",
        "agent.learning_starts=1600",
        "agent.eps_anneal_steps=5000",
        "agent.n_step=10",
        "agent.lr=1e-4",
        "agent.target_update_interval=2000",
    ],
}


@pytest.mark.slow
@pytest.mark.parametrize("agent", sorted(CASES))
def test_breakout_100k_beats_random_in_both_seeds(agent, tmp_path):
    import csv

    from experiments.compose import load_config
    from experiments.train import run

    cfg = load_config([*CASES[agent], *COMMON, f"run_dir={tmp_path / agent}"])
    run(cfg, quiet=True)
    rows = list(csv.DictReader(open(tmp_path / agent / "metrics.csv")))
    final = {}
    for r in rows:
        if r.get("eval/episodic_return"):
            final[r["seed"]] = float(r["eval/episodic_return"])
    assert len(final) == 2, final
    assert all(v > RANDOM_BREAKOUT for v in final.values()), final
