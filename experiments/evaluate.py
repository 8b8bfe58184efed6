"""`rl-aux eval RUN_DIR`: evaluate a trained run's checkpoint, per seed, and optionally film it.

The run's `config.yaml` rebuilds the agent as `rl-aux train` built it (`build_agent`), the
checkpoint (the latest, or `--checkpoint N`) restores the vmapped state of every seed x grid
point, and `rl_aux.evaluation.evaluate` plays `--episodes` fresh episodes per run, greedy or
`--epsilon`-greedy. Episode keys depend only on `--seed` and the run's seed, so a re-run gives
the same returns and every grid point of a seed meets the same episodes. The returns, with a
95% t-interval per seed and over seeds, go to `RUN_DIR/eval/<checkpoint>.json`; `--video`
writes one GIF per run of its first greedy episode (`RUN_DIR/eval/<checkpoint>_g<G>_s<S>.gif`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable

import numpy as np

DEFAULT_EPISODES = 16
DEFAULT_SEED = 0
CI_SIZE = 0.95
GIF_FRAME_MS = 50
MINATAR_CELL_PX = 16
CARTPOLE_SIZE = (300, 180)
HEADER_PX = 14  # strip above each frame with the step number (frames never repeat exactly)
# envs a --video can draw; host-stepped envs (nethack/, minihack/) keep no checkpoints at all
VIDEO_SUPPORTED = ("gymnax/*-MinAtar", "gymnax/CartPole-v1", "atari/*")


class EvalError(Exception):
    """Bad input (run dir, checkpoint, option): the message names the value; exit code 2."""


# ------------------------------------------------------------------------------ arguments
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}; accepted: an integer >= 1")
    return value


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r}; accepted: a number in [0, 1]")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}; accepted: an integer >= 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    """Command-line interface of `rl-aux eval`."""
    p = argparse.ArgumentParser(
        prog="rl-aux eval",
        description="Evaluate a run's checkpoint: returns per seed with a 95% CI, JSON beside "
        "the run, optional GIF per seed.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory of `rl-aux train`")
    p.add_argument(
        "--checkpoint",
        type=_non_negative_int,
        default=None,
        metavar="N",
        help="checkpoint number (a directory under RUN_DIR/checkpoints; default: the latest)",
    )
    p.add_argument(
        "--episodes",
        type=_positive_int,
        default=DEFAULT_EPISODES,
        help=f"episodes per seed and grid point (default: {DEFAULT_EPISODES})",
    )
    p.add_argument(
        "--epsilon",
        type=_probability,
        default=0.0,
        help="probability of a uniform action (default: 0, greedy)",
    )
    p.add_argument(
        "--max-steps",
        type=_positive_int,
        default=None,
        help="steps per episode (default: the run's eval.max_steps, else the env's limit)",
    )
    p.add_argument(
        "--seed",
        type=_non_negative_int,
        default=DEFAULT_SEED,
        help=f"evaluation seed (default: {DEFAULT_SEED})",
    )
    p.add_argument(
        "--video",
        action="store_true",
        help=f"write a GIF per seed and grid point; supported envs: {', '.join(VIDEO_SUPPORTED)}",
    )
    return p


# ---------------------------------------------------------------------------- run loading
def available_checkpoints(run_dir: str) -> list[int]:
    """The checkpoint numbers (chunk indices) stored under RUN_DIR/checkpoints, ascending."""
    root = os.path.join(run_dir, "checkpoints")
    if not os.path.isdir(root):
        return []
    return sorted(int(d) for d in os.listdir(root) if d.isdigit())


def load_run_config(run_dir: str):
    """The run's TrainConfig from its config.yaml (plugins it names imported first)."""
    import yaml

    from experiments.compose import ConfigError, build, import_plugin

    path = os.path.join(run_dir, "config.yaml")
    if not os.path.isdir(run_dir):
        raise EvalError(f"RUN_DIR={run_dir!r}: no such directory; give a run of `rl-aux train`")
    if not os.path.isfile(path):
        raise EvalError(f"RUN_DIR={run_dir!r} has no config.yaml; give a run of `rl-aux train`")
    with open(path) as f:
        raw = yaml.safe_load(f) or {}
    if not isinstance(raw, dict):
        raise EvalError(f"{path}: not a mapping of config keys")
    try:
        for mod in raw.get("plugins") or ():
            import_plugin(mod)  # a module name or a .py file
        return build(raw)
    except ConfigError as e:
        raise EvalError(f"{path}: {e}") from None


def check_supported(cfg, video: bool) -> None:
    """EvalError unless `rl-aux eval` can rebuild and (with --video) draw this run."""
    from agents.registry import agent_class, is_offline
    from envs.registry import env_family

    name = cfg.env.name
    if env_family(name).host_stepped:
        raise EvalError(
            f"env.name={name!r}: host-stepped NLE/MiniHack runs keep no checkpoints, so "
            "`rl-aux eval` cannot restore them; supported: JAX envs (gymnax/, memory/, "
            "fsgrid/, four_rooms/, barfi/) and atari/*"
        )
    if is_offline(agent_class(cfg.agent_name)):
        raise EvalError(
            f"agent={cfg.agent_name}: an offline learner (no policy to play); supported: "
            "agent=ppo, dqn, pvn_linear"
        )
    if video and frame_renderer(name) is None:
        raise EvalError(
            f"--video: env.name={name!r} has no frame renderer; supported: "
            f"{', '.join(VIDEO_SUPPORTED)} (evaluate it without --video)"
        )


def pick_checkpoint(run_dir: str, requested: int | None) -> int:
    """The checkpoint to restore: `requested`, or the latest one."""
    steps = available_checkpoints(run_dir)
    if not steps:
        raise EvalError(
            f"RUN_DIR={run_dir!r} has no checkpoints (no numbered directory under "
            f"{os.path.join(run_dir, 'checkpoints')}); train it with checkpointing first"
        )
    if requested is None:
        return steps[-1]
    if requested not in steps:
        at = checkpoint_global_steps(run_dir)
        shown = [f"{c} (global_step {at[c]})" if c in at else str(c) for c in steps]
        raise EvalError(
            f"--checkpoint={requested} is not stored in {run_dir}; accepted: {', '.join(shown)}"
        )
    return requested


def checkpoint_global_steps(run_dir: str) -> dict[int, int]:
    """Checkpoint number (chunk index) -> the env steps it holds, from the run's meta.json."""
    path = os.path.join(run_dir, "meta.json")
    try:
        with open(path) as f:
            meta = json.load(f)
        upc, spu = int(meta["updates_per_chunk"]), int(meta["steps_per_update"])
        total = int(meta["num_updates"])
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return {c: min((c + 1) * upc, total) * spu for c in available_checkpoints(run_dir)}


# ---------------------------------------------------------------------------- statistics
def t_interval(values: np.ndarray, size: float = CI_SIZE) -> tuple[float, float]:
    """Student-t confidence interval of the mean (NaN with one value; a point if no spread)."""
    import scipy.stats

    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        return math.nan, math.nan
    mean, sem = float(x.mean()), float(scipy.stats.sem(x))
    if sem == 0.0:
        return mean, mean
    low, high = scipy.stats.t.interval(size, len(x) - 1, loc=mean, scale=sem)
    return float(low), float(high)


# ------------------------------------------------------------------------------ rendering
MINATAR_COLOURS = np.array(
    [
        [230, 25, 75],
        [60, 180, 75],
        [255, 225, 25],
        [0, 130, 200],
        [245, 130, 48],
        [145, 30, 180],
        [70, 240, 240],
        [240, 50, 230],
        [210, 245, 60],
        [250, 190, 212],
    ],
    np.uint8,
)


def minatar_frame(obs: np.ndarray) -> np.ndarray:
    """[H, W, C] 0/1 channels -> RGB image, one colour per channel (the last lit one wins)."""
    obs = np.asarray(obs) > 0.5
    h, w, c = obs.shape
    img = np.zeros((h, w, 3), np.uint8)
    for ch in range(c):
        img[obs[..., ch]] = MINATAR_COLOURS[ch % len(MINATAR_COLOURS)]
    return np.kron(img, np.ones((MINATAR_CELL_PX, MINATAR_CELL_PX, 1), np.uint8))


def atari_frame(obs: np.ndarray) -> np.ndarray:
    """[H, W, stack] uint8 -> the newest frame as an RGB image, scaled up 2x."""
    frame = np.asarray(obs)[..., -1].astype(np.uint8)
    rgb = np.repeat(frame[..., None], 3, axis=-1)
    return np.kron(rgb, np.ones((2, 2, 1), np.uint8))


def cartpole_frame(obs: np.ndarray) -> np.ndarray:
    """[x, x_dot, theta, theta_dot] -> a drawn cart and pole (x in [-2.4, 2.4])."""
    from PIL import Image, ImageDraw

    w, h = CARTPOLE_SIZE
    img = Image.new("RGB", (w, h), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    x, theta = float(obs[0]), float(obs[2])
    ground = int(h * 0.75)
    draw.line([(0, ground), (w, ground)], fill=(0, 0, 0))
    cx = w / 2 + x / 2.4 * (w / 2 - 30)
    draw.rectangle([cx - 25, ground - 15, cx + 25, ground + 5], fill=(40, 40, 40))
    pole = h * 0.55
    tip = (cx + pole * math.sin(theta), ground - 15 - pole * math.cos(theta))
    draw.line([(cx, ground - 15), tip], fill=(200, 120, 40), width=6)
    return np.asarray(img)


def frame_renderer(env_name: str) -> Callable[[np.ndarray], np.ndarray] | None:
    """The obs -> RGB function for an env, or None when it has none."""
    if env_name.startswith("gymnax/") and env_name.endswith("-MinAtar"):
        return minatar_frame
    if env_name == "gymnax/CartPole-v1":
        return cartpole_frame
    if env_name.startswith("atari/"):
        return atari_frame
    return None


def write_gif(path: str, frames: list[np.ndarray]) -> int:
    """A looping GIF, each frame under a strip with its step number; returns the frame count."""
    from PIL import Image, ImageDraw

    images = []
    for t, frame in enumerate(frames):
        h, w = frame.shape[:2]
        img = Image.new("RGB", (w, h + HEADER_PX), (0, 0, 0))
        img.paste(Image.fromarray(frame), (0, HEADER_PX))
        ImageDraw.Draw(img).text((2, 1), f"t={t}", fill=(255, 255, 255))
        images.append(img)
    images[0].save(path, save_all=True, append_images=images[1:], duration=GIF_FRAME_MS, loop=0)
    return len(images)


# ----------------------------------------------------------------------------- rollouts
def episode_recorder(agent, env, epsilon: float, max_steps: int):
    """A jittable (params, key) -> (obs [T], last next_obs [T], alive [T], score [T]) of one
    env's first episode, acting as `evaluate` does (the video's episode)."""
    import jax
    import jax.numpy as jnp

    from rl_aux.networks.network import network_initial_carry

    def record(params, key):
        k_reset, k_run = jax.random.split(key)
        env_state, ts = env.reset(k_reset)
        carry = network_initial_carry(agent.cfg.network, 1)

        def step(c, k):
            env_state, obs, carry, first, alive = c
            k_act, k_env = jax.random.split(k)
            a, carry, _ = agent.act(params, obs, carry, first, k_act, greedy=True, epsilon=epsilon)
            env_state, ts = env.step(env_state, a, k_env)
            score = ts.extras.get("score", ts.reward)
            over = ts.extras.get("game_over", ts.done)
            out = (obs[0], ts.extras["next_obs"][0], alive[0], score[0])
            alive = alive * (1.0 - over.astype(jnp.float32))
            return (env_state, ts.obs, carry, ts.done, alive), out

        init = (env_state, ts.obs, carry, jnp.ones(1, bool), jnp.ones(1))
        _, out = jax.lax.scan(step, init, jax.random.split(k_run, max_steps))
        return out

    return record


def video_frames(obs, next_obs, alive, render) -> list[np.ndarray]:
    """The first episode's frames: the obs before each of its T steps, then its final obs."""
    steps = int(np.asarray(alive).sum())
    frames = [render(o) for o in np.asarray(obs)[:steps]]
    frames.append(render(np.asarray(next_obs)[steps - 1]))
    return frames


# --------------------------------------------------------------------------------- main
def run_eval(args: argparse.Namespace) -> dict:
    """Restore, evaluate (and film), write the JSON; returns its content."""
    run_dir = os.path.abspath(args.run_dir)
    cfg = load_run_config(run_dir)
    check_supported(cfg, args.video)
    chunk = pick_checkpoint(run_dir, args.checkpoint)

    import jax
    import jax.numpy as jnp

    from envs import make_env
    from experiments.hp_labels import flat_hparams, grid_labels
    from experiments.train import build_agent, grid_points
    from rl_aux.checkpoint import Checkpointer
    from rl_aux.evaluation import evaluate
    from rl_aux.vectorize import batch_runs, vmapped_init

    _, agent = build_agent(cfg)
    hps = grid_points(cfg, agent.default_hparams())
    seeds = [cfg.seed + s for s in range(cfg.num_seeds)]
    flat_seeds = [s for _ in hps for s in seeds]
    flat_grids = [g for g in range(len(hps)) for _ in seeds]
    keys = jnp.stack([jax.random.PRNGKey(s) for s in flat_seeds])
    hp_batch = jax.tree.map(
        lambda *xs: jnp.stack([jnp.asarray(x, jnp.float32) for x in xs]),
        *[hps[g] for g in flat_grids],
    )
    init_fn, _ = vmapped_init(agent, keys[0], hps[0])
    like = jax.eval_shape(init_fn, keys, hp_batch)
    ckpt = Checkpointer(os.path.join(run_dir, "checkpoints"), cfg.checkpoint.keep)
    try:
        state, meta = ckpt.restore(chunk, like)
    finally:
        ckpt.close()
    params = state.params

    eval_env = make_env(cfg.env.name, args.episodes, cfg.env.options)
    max_steps = args.max_steps or cfg.eval.max_steps or eval_env.spec.max_episode_steps
    eval_keys = jnp.stack(
        [jax.random.fold_in(jax.random.PRNGKey(args.seed), s) for s in flat_seeds]
    )
    play = batch_runs(
        lambda p, k: evaluate(agent, eval_env, p, k, args.epsilon, max_steps), cfg.run_batching
    )
    returns = np.asarray(jax.jit(play)(params, eval_keys), dtype=float)  # [runs, episodes]

    names = grid_labels([flat_hparams(hp) for hp in hps])
    out_dir = os.path.join(run_dir, "eval")
    os.makedirs(out_dir, exist_ok=True)
    runs = []
    for i, (seed, grid) in enumerate(zip(flat_seeds, flat_grids, strict=True)):
        low, high = t_interval(returns[i])
        runs.append(
            {
                "seed": seed,
                "grid": grid,
                "hparams": flat_hparams(hps[grid]),
                "returns": returns[i].tolist(),
                "mean": float(returns[i].mean()),
                "ci_low": low,
                "ci_high": high,
            }
        )
    grids = []
    for g, hp in enumerate(hps):
        means = np.array([r["mean"] for r in runs if r["grid"] == g])
        low, high = t_interval(means)
        grids.append(
            {
                "grid": g,
                "label": names[g],
                "hparams": flat_hparams(hp),
                "num_seeds": len(means),
                "mean": float(means.mean()),
                "ci_low": low,
                "ci_high": high,
            }
        )
    if args.video:
        render = frame_renderer(cfg.env.name)
        video_env = make_env(cfg.env.name, 1, cfg.env.options)
        record = batch_runs(
            episode_recorder(agent, video_env, args.epsilon, max_steps), cfg.run_batching
        )
        obs, next_obs, alive, score = jax.device_get(jax.jit(record)(params, eval_keys))
        for i, r in enumerate(runs):
            frames = video_frames(obs[i], next_obs[i], alive[i], render)
            path = os.path.join(out_dir, f"{chunk}_g{r['grid']}_s{r['seed']}.gif")
            r["video"] = {
                "path": path,
                "frames": write_gif(path, frames),
                "episode_length": int(alive[i].sum()),
                "episode_return": float((score[i] * alive[i]).sum()),
            }
    result = {
        "run_dir": run_dir,
        "env": cfg.env.name,
        "agent": cfg.agent_name,
        "label": cfg.label,
        "checkpoint": chunk,
        "global_step": int(meta["global_step"]),
        "episodes": args.episodes,
        "epsilon": args.epsilon,
        "max_steps": int(max_steps),
        "eval_seed": args.seed,
        "ci": f"{CI_SIZE:.0%} Student-t interval of the mean",
        "runs": runs,
        "grid_points": grids,
    }
    path = os.path.join(out_dir, f"{chunk}.json")
    with open(path, "w") as f:
        json.dump(_json_safe(result), f, indent=2, allow_nan=False)
    result["json"] = path
    return result


def _json_safe(value):
    """NaN (an interval of one value) as null: strict JSON."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def format_result(result: dict) -> str:
    """The per-seed and per-grid-point table `rl-aux eval` prints."""

    def ci(r: dict) -> str:
        return f"[{r['ci_low']:.2f}, {r['ci_high']:.2f}]"

    head = (
        f"[{result['label']}] {result['env']} checkpoint {result['checkpoint']} "
        f"(global_step {result['global_step']}): {result['episodes']} episode(s) per seed, "
        f"epsilon {result['epsilon']:g}, up to {result['max_steps']} steps"
    )
    labels = {g["grid"]: g["label"] for g in result["grid_points"]}
    lines = [head, "  grid seed      mean  95% CI                  hparams"]
    for r in result["runs"]:
        lines.append(
            f"  {r['grid']:>4} {r['seed']:>4}  {r['mean']:>8.2f}  {ci(r):<22}  {labels[r['grid']]}"
        )
    lines.append("  over seeds (95% CI of the mean of per-seed means):")
    for g in result["grid_points"]:
        lines.append(
            f"  {g['grid']:>4} {g['num_seeds']:>3}x {g['mean']:>8.2f}  {ci(g):<22}  {g['label']}"
        )
    for r in result["runs"]:
        if "video" in r:
            v = r["video"]
            lines.append(f"  video: {v['path']} ({v['frames']} frames)")
    lines.append(f"wrote {result['json']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `rl-aux eval`; returns the exit code (2 on bad input)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # argparse: --help (0) or a bad option, already explained (2)
        return int(e.code or 0)
    try:
        result = run_eval(args)
    except EvalError as e:
        print(f"rl-aux eval: error: {e}", file=sys.stderr)
        return 2
    print(format_result(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
