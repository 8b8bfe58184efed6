"""Convert an RLDS/TFDS episode dataset (e.g. the DQN Replay data as `rlu_atari_checkpoints_
ordered/<Game>_run_<k>`) already on local disk into rl-aux's transition format (docs/pvn.md).

    python scripts/rlds_to_transitions.py \
        --tfds-dir ~/tensorflow_datasets/rlu_atari_checkpoints_ordered/Breakout_run_1/1.1.0 \
        --out data/atari/Breakout --stack 4 [--max-transitions N] [--split checkpoint_00]

Needs `tensorflow-datasets` (and TensorFlow) installed; it never downloads (builder_from_directory
reads what is on disk). RLDS step t holds (o_t, a_t, r_t, is_terminal, is_last); transition t is
(o_t, a_t, r_t, o_{t+1}) with terminated = is_terminal[t+1] and truncated = is_last[t+1] and not
terminated. `--stack k` stacks the last k frames along the channel axis (zeros before the start).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def stack_frames(frames: np.ndarray, k: int) -> np.ndarray:
    """[L, H, W, C] -> [L, H, W, k*C]: frame t holds frames t-k+1..t (zeros before 0)."""
    if k == 1:
        return frames
    pad = np.zeros((k - 1,) + frames.shape[1:], frames.dtype)
    x = np.concatenate([pad, frames])
    return np.concatenate([x[i : i + len(frames)] for i in range(k)], axis=-1)


def episode_transitions(
    obs: np.ndarray,
    action: np.ndarray,
    reward: np.ndarray,
    is_terminal: np.ndarray,
    is_last: np.ndarray,
    stack: int = 1,
) -> dict:
    """The L-1 transitions of one RLDS episode of L steps (see the module docstring)."""
    if stack > 1:
        obs = stack_frames(obs, stack)
    term = np.asarray(is_terminal[1:], bool)
    last = np.asarray(is_last[1:], bool)
    action = np.asarray(action)
    if action.ndim > 1:  # one-hot actions (as in rlu_atari) -> indices
        action = action.argmax(-1)
    return {
        "obs": obs[:-1],
        "action": action[:-1].astype(np.int32),
        "reward": np.asarray(reward[:-1], np.float32),
        "terminated": term,
        "truncated": last & ~term,
        "next_obs": obs[1:],
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tfds-dir", required=True, help="a prepared TFDS dataset directory")
    ap.add_argument("--out", required=True)
    ap.add_argument("--split", default="train")
    ap.add_argument("--stack", type=int, default=1)
    ap.add_argument("--num-actions", type=int, default=0, help="0: from the action spec")
    ap.add_argument("--max-transitions", type=int, default=0)
    ap.add_argument("--env", default="")
    args = ap.parse_args(argv)
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        print(
            "rlds_to_transitions: needs `pip install tensorflow tensorflow-datasets`",
            file=sys.stderr,
        )
        return 2
    from rl_aux.dataset import TransitionWriter

    builder = tfds.builder_from_directory(args.tfds_dir)
    ds = builder.as_dataset(split=args.split)
    act_spec = builder.info.features["steps"]["action"]
    num_actions = args.num_actions or int(getattr(act_spec, "num_classes", 0) or act_spec.shape[-1])
    writer = None
    total = 0
    for episode in tfds.as_numpy(ds):
        s = episode["steps"]
        obs = s["observation"]
        tr = episode_transitions(
            obs, s["action"], s["reward"], s["is_terminal"], s["is_last"], args.stack
        )
        if writer is None:
            writer = TransitionWriter(
                args.out,
                tr["obs"].shape[1:],
                str(tr["obs"].dtype),
                num_actions,
                args.env,
                source=f"RLDS {args.tfds_dir} split {args.split}, stack {args.stack}",
            )
        if args.max_transitions:
            tr = {k: v[: args.max_transitions - total] for k, v in tr.items()}
        if len(tr["action"]):
            writer.write(tr)
            total += len(tr["action"])
        if args.max_transitions and total >= args.max_transitions:
            break
    if writer is None:
        print("rlds_to_transitions: the dataset has no episodes", file=sys.stderr)
        return 2
    writer.close()
    print(f"wrote {total} transitions to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
