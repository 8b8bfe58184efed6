"""Judge quality on MiniHack-KeyRoom-Fixed-S5: collect labelled transitions, score matcher/judge.

    python -m experiments.studies.llm_keyroom collect \
        --out tests/data/llm/keyroom_transitions.jsonl
    python -m experiments.studies.llm_keyroom eval --data ... --scorer matcher|judge \
        [--llm-mode ...]

`collect` rolls out a random-plus-scripted policy (BFS to the key, PICKUP, to the door, APPLY,
to the stairs; epsilon-random moves mixed in) and labels every transition programmatically:
key picked up (a key entered the inventory), door opened (a closed-door glyph disappeared),
stairs reached (the episode ended with the success reward). Captions are stored with and
without the message line. `eval` reports transition-level precision/recall/F1 ("any subgoal
flagged" vs "any labelled", as CALM's evaluation does) and per-subgoal figures.
"""

from __future__ import annotations

import argparse
import collections
import json
import os

import numpy as np

ENV_ID = "MiniHack-KeyRoom-Fixed-S5-v0"
LABELS = ("key", "door", "stairs")
SUBGOALS = {  # label -> the plain description the matcher and judge receive
    "key": "pick up the key",
    "door": "open the locked door",
    "stairs": "go down the stairs",
}
DIRS = [(0, -1), (1, 0), (0, 1), (-1, 0), (1, -1), (1, 1), (-1, 1), (-1, -1)]  # N E S W NE SE SW NW
PICKUP, APPLY = 8, 9
WALLS = set(range(2359, 2371)) | {2374, 2375}  # stone, walls, closed doors (GLYPH_CMAP_OFF + ..)
DOORWAYS = {2371, 2372, 2373}
CLOSED = (2374, 2375)
STAIRS = 2383


def _bfs_step(glyphs: np.ndarray, start, goals: set) -> int | None:
    """First move of a shortest 8-connected path from start to any goal cell (no diagonal
    moves into or out of doorways, as in NetHack)."""
    h, w = glyphs.shape
    prev = {start: None}
    frontier = collections.deque([start])
    while frontier:
        cur = frontier.popleft()
        if cur in goals:
            while prev[cur] is not None and prev[cur][0] != start:
                cur = prev[cur][0]
            return None if prev[cur] is None else prev[cur][1]
        for a, (dx, dy) in enumerate(DIRS):
            nx, ny = cur[0] + dx, cur[1] + dy
            if not (0 <= nx < w and 0 <= ny < h) or (nx, ny) in prev:
                continue
            g = glyphs[ny, nx]
            diag = dx != 0 and dy != 0
            if (g in WALLS and (nx, ny) not in goals) or (
                diag and (g in DOORWAYS or glyphs[cur[1], cur[0]] in DOORWAYS)
            ):
                continue
            prev[(nx, ny)] = (cur, a)
            frontier.append((nx, ny))
    return None


def scripted_action(obs, rng: np.random.Generator) -> int:
    """The scripted policy: key, then door, then stairs; random when no target is reachable."""
    from rl_aux.llm.caption import decode_inventory

    g, bl = obs["glyphs"], obs["blstats"]
    pos = (int(bl[0]), int(bl[1]))
    has_key = any("key" in s for s in decode_inventory(obs["inv_strs"]))
    chars = obs["chars"]
    if not has_key:
        keys = {(int(x), int(y)) for y, x in zip(*np.nonzero(chars == ord("(")), strict=True)}
        if _on_key(obs):  # the agent hides the key glyph it stands on
            return PICKUP
        a = _bfs_step(g, pos, keys)
        return int(rng.integers(8)) if a is None else a
    doors = {(int(x), int(y)) for y, x in zip(*np.nonzero(np.isin(g, CLOSED)), strict=True)}
    if doors:
        near = {(d[0] + dx, d[1] + dy) for d in doors for dx, dy in DIRS[:4]}
        if pos in near:
            return APPLY
        a = _bfs_step(g, pos, near)
        return int(rng.integers(8)) if a is None else a
    stairs = {(int(x), int(y)) for y, x in zip(*np.nonzero(g == STAIRS), strict=True)}
    a = _bfs_step(g, pos, stairs) if stairs else None
    if a is None:  # stairs not seen yet: walk towards unexplored floor past the door
        unseen = {
            (int(x), int(y))
            for y, x in zip(*np.nonzero(np.isin(g, (2371, 2372, 2373))), strict=True)
        }
        a = _bfs_step(g, pos, unseen) if unseen and pos not in unseen else None
    return int(rng.integers(4)) if a is None else a


def _on_key(obs) -> bool:
    from rl_aux.llm.caption import decode_message

    return (
        "key" in decode_message(obs["message"]).lower()
        and "see here" in decode_message(obs["message"]).lower()
    )


def collect(out: str, episodes: int, seed: int, max_steps: int) -> dict:
    import gymnasium as gym
    import minihack  # noqa: F401  (registers the MiniHack envs)

    from envs.nethack import action_names
    from rl_aux.llm.caption import (
        CaptionConfig,
        caption,
        decode_inventory,
        decode_message,
    )

    keys = ("message", "blstats", "inv_strs", "glyphs", "chars")
    env = gym.make(ENV_ID, observation_keys=keys)
    names = action_names(env.unwrapped.actions)
    rng = np.random.default_rng(seed)
    rows, eps_list = [], (0.1, 0.25, 0.5, 0.75)
    for ep in range(episodes):
        env.unwrapped.seed(core=seed + ep, disp=seed + ep, reseed=False)  # reproducible
        obs, _ = env.reset()
        obs = {k: np.array(v) for k, v in obs.items()}  # NLE reuses its buffers: copy
        eps = eps_list[ep % len(eps_list)]
        for t in range(max_steps):
            a = int(rng.integers(10)) if rng.random() < eps else scripted_action(obs, rng)
            nobs, r, term, trunc, _ = env.step(a)
            nobs = {k: np.array(v) for k, v in nobs.items()}
            inv0 = decode_inventory(obs["inv_strs"])
            gained = [s for s in decode_inventory(nobs["inv_strs"]) if s not in inv0]
            closed0 = np.isin(obs["glyphs"], CLOSED).sum()
            closed1 = np.isin(nobs["glyphs"], CLOSED).sum()
            labels = {
                "key": any("key" in s for s in gained),
                "door": bool(closed1 < closed0),
                "stairs": bool(term and r > 0),
            }
            rows.append(
                {
                    "episode": ep,
                    "t": t,
                    "action": names[a],
                    "message": decode_message(nobs["message"]),
                    "caption": caption(obs, names[a], nobs),
                    "caption_nomsg": caption(obs, names[a], nobs, CaptionConfig(message=False)),
                    "labels": labels,
                }
            )
            obs = nobs
            if term or trunc:
                break
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    with open(out, "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    counts = {k: sum(r["labels"][k] for r in rows) for k in LABELS}
    return {"transitions": len(rows), "episodes": episodes, "positives": counts}


def load(path: str) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f]


def prf(pred: np.ndarray, gold: np.ndarray) -> dict:
    """Precision, recall, F1 of boolean predictions (0 where undefined)."""
    tp = int((pred & gold).sum())
    fp, fn = int((pred & ~gold).sum()), int((~pred & gold).sum())
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f, "tp": tp, "fp": fp, "fn": fn}


def score(rows: list[dict], pred: np.ndarray) -> dict:
    """Transition-level ("any") and per-subgoal P/R/F1 of [N, 3] predictions."""
    gold = np.array([[r["labels"][k] for k in LABELS] for r in rows], bool)
    out = {"any": prf(pred.any(-1), gold.any(-1))}
    for j, k in enumerate(LABELS):
        out[k] = prf(pred[:, j], gold[:, j])
    return out


def matcher_predictions(rows, field: str, goal_text: str, cache_path: str | None):
    from rl_aux.llm.cache import LLMCache
    from rl_aux.llm.embedder import Embedder
    from rl_aux.llm.matcher import Matcher
    from rl_aux.llm.prompts import Subgoal

    cache = LLMCache(cache_path) if cache_path else None
    text = {
        "description": lambda k: SUBGOALS[k],
        "hint": lambda k: HINTS[k],
        "both": lambda k: f"{SUBGOALS[k]}: {HINTS[k]}",
    }[goal_text]
    goals = [Subgoal(k, text(k)) for k in LABELS]
    m = Matcher(Embedder(cache), goals, 0.0)
    return m.scores([r[field] for r in rows])


def judge_predictions(rows, field: str, judge) -> tuple[np.ndarray, int]:
    """[N, 3] verdicts (unknown counts as not achieved) and the number of unknowns."""
    from rl_aux.llm.prompts import Subgoal

    goals = [Subgoal(k, SUBGOALS[k], HINTS[k]) for k in LABELS]
    uniq = sorted({r[field] for r in rows})
    verdict = {c: judge.judge(goals, c) for c in uniq}
    pred = np.array([[k in (verdict[r[field]] or []) for k in LABELS] for r in rows], bool)
    return pred, sum(v is None for v in verdict.values())


# Observable descriptions of the subgoals (the "hint"/"both" prompts and the tests use them).
HINTS = {
    "key": "a key enters the inventory",
    "door": "a closed door opens",
    "stairs": "the agent steps onto the stairs down",
}


def overhead(steps: int, num_envs: int, seed: int) -> dict:
    """Host cost of the subgoal reward per env step (captions + ids + one table lookup per
    rollout, warm table) beside the raw MiniHack step, on a random policy."""
    import time

    import gymnasium as gym
    import minihack  # noqa: F401

    from envs.nethack import action_names
    from rl_aux.llm.caption import OBS_KEYS
    from rl_aux.llm.settings import LLMConfig
    from rl_aux.llm.shaper import SubgoalShaper
    from rl_aux.rewards.subgoal import EllmRewardConfig

    envs = [gym.make(ENV_ID, observation_keys=OBS_KEYS) for _ in range(num_envs)]
    names = action_names(envs[0].unwrapped.actions)
    rng = np.random.default_rng(seed)
    obs = [
        {k: np.array(v) for k, v in e.reset(seed=seed + i)[0].items()} for i, e in enumerate(envs)
    ]
    t_env = t_cap = 0.0
    trajectory = []
    for _ in range(steps):
        acts = rng.integers(len(names), size=num_envs)
        t0 = time.perf_counter()
        nxt, dones = [], []
        for e, a in zip(envs, acts, strict=True):
            o, _, term, trunc, _ = e.step(int(a))
            nxt.append({k: np.array(v) for k, v in o.items()})
            dones.append(term or trunc)
        t_env += time.perf_counter() - t0
        trajectory.append((obs, acts, nxt, dones))
        obs = [
            {k: np.array(v) for k, v in e.reset()[0].items()} if d else n
            for e, n, d in zip(envs, nxt, dones, strict=True)
        ]
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        lcfg = LLMConfig(mode="off", cache_path=os.path.join(tmp, "c.sqlite"))
        shaper = SubgoalShaper(EllmRewardConfig(table_size=4096), lcfg, names, num_envs)
        stack = lambda os_: {k: np.stack([o[k] for o in os_]) for k in OBS_KEYS}
        batched = [(stack(p), a, stack(n), d) for p, a, n, d in trajectory]  # as a vector env
        for _warm in (True, False):  # first pass fills the table (cold); the second is timed
            t_cap, ids, dones_all = 0.0, [], []
            for p, a, n, d in batched:
                t0 = time.perf_counter()
                ids.append(shaper.step_ids(p, a, n))
                t_cap += time.perf_counter() - t0
                dones_all.append(d)
            shaper.annotator.drain(60)
            t0 = time.perf_counter()
            r = shaper.rollout_rewards(np.stack(ids), np.array(dones_all))
            t_table = time.perf_counter() - t0
        metrics = shaper.metrics()
        shaper.close()
    n = steps * num_envs
    return {
        "env_steps": n,
        "env_us_per_step": 1e6 * t_env / n,
        "caption_us_per_step": 1e6 * t_cap / n,
        "table_lookup_ms_per_rollout": 1e3 * t_table,
        "ratio_with_reward": t_env / (t_env + t_cap + t_table),
        "paid_steps": int((r > 0).sum()),
        **{k: v for k, v in metrics.items() if k in ("llm/captions", "llm/table_fill_rate")},
    }


def main(argv=None) -> None:
    import rl_aux  # noqa: F401  (XLA flag before jax starts)

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect")
    c.add_argument("--out", default="tests/data/llm/keyroom_transitions.jsonl")
    c.add_argument("--episodes", type=int, default=16)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--max-steps", type=int, default=40)
    e = sub.add_parser("eval")
    e.add_argument("--data", default="tests/data/llm/keyroom_transitions.jsonl")
    e.add_argument("--scorer", choices=("matcher", "judge"), default="matcher")
    e.add_argument("--thresholds", default="0.3,0.4,0.5,0.6,0.7")
    e.add_argument("--goal-text", choices=("description", "hint", "both"), default="description")
    e.add_argument("--cache", default="tests/data/llm/keyroom_cache.sqlite")
    e.add_argument("--llm-mode", default="replay", choices=("online", "record", "replay"))
    e.add_argument("--base-url", default="http://127.0.0.1:8080/v1")
    e.add_argument("--model", default="gemma-3-270m-q4_k_m")
    e.add_argument("--json", default="")
    o = sub.add_parser("overhead")
    o.add_argument("--steps", type=int, default=256)
    o.add_argument("--num-envs", type=int, default=8)
    o.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    if a.cmd == "overhead":
        print(json.dumps(overhead(a.steps, a.num_envs, a.seed), indent=1))
        return
    if a.cmd == "collect":
        print(json.dumps(collect(a.out, a.episodes, a.seed, a.max_steps)))
        return
    rows = load(a.data)
    results = {}
    for field in ("caption", "caption_nomsg"):
        if a.scorer == "matcher":
            s = matcher_predictions(rows, field, a.goal_text, a.cache)
            for th in [float(x) for x in a.thresholds.split(",")]:
                results[f"{field}@{th}"] = score(rows, s > th)
                top = s == s.max(-1, keepdims=True)  # ELLM: only the best-matching goal
                results[f"{field}@{th}/top1"] = score(rows, (s > th) & top)
        else:
            from rl_aux.llm.cache import LLMCache
            from rl_aux.llm.client import ChatClient, ClientConfig
            from rl_aux.llm.judge import LLMJudge

            cache = LLMCache(a.cache)
            client = None
            if a.llm_mode != "replay":
                client = ChatClient(ClientConfig(base_url=a.base_url, model=a.model))
            judge = LLMJudge(cache, client, a.llm_mode, a.model)
            pred, unknown = judge_predictions(rows, field, judge)
            results[field] = {**score(rows, pred), "unknown": unknown, **vars(judge.stats)}
    for k, v in results.items():
        print(
            k,
            {m: round(v["any"][m], 3) for m in ("precision", "recall", "f1")},
            {lab: round(v[lab]["f1"], 3) for lab in LABELS},
        )
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
