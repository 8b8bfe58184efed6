"""`rl-aux sweep`: a hydra multirun whose jobs are `rl-aux train` runs, on a hydra launcher.

Seeds and shape-free floats (`grid.lr=[...]`, `grid.<head>.weight=[...]`) stay inside one
vmapped program per job; comma-swept keys (`env=a,b head=x,y`) become separate jobs. Each
job trains in a fresh `rl-aux train` process (so every launcher - basic, submitit local or
SLURM, Ray - runs the same code), into `<root>/<swept key=value,...>`, always with
resume=auto: the first launch starts every run, a relaunched sweep skips finished runs and
resumes the others from their checkpoints. Launchers: `hydra/launcher=local_parallel|slurm|
ray` (experiments/configs/hydra/launcher/); default: one job after another in this process.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

from experiments.compose import (
    CONFIG_DIR,
    ConfigError,
    check_override_syntax,
    hydra_override,
    import_plugins,
    register_generated_groups,
)
from experiments.job_guard import guarded_command, term_with_parent

_SWEEP_FN = re.compile(r"^(range|choice|glob|interval|tag|sort|shuffle)\(")


def _is_swept(override: str) -> bool:
    """`key=a,b` (a comma outside brackets/quotes) or `key=range(...)`/`choice(...)`."""
    if "=" not in override or override.startswith("hydra"):
        return False
    value = override.split("=", 1)[1]
    if _SWEEP_FN.match(value):
        return True
    depth, quote = 0, None
    for ch in value:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == "," and depth == 0:
            return True
    return False


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def job_dir(root: str, job_overrides: list[str], swept: set[str]) -> str:
    """`<root>/<k=v,...>` from the job's values of the swept keys (stable across relaunches)."""
    parts = sorted(o for o in job_overrides if _key(o) in swept)
    name = ",".join(parts).replace("/", "_") or "run"
    return os.path.join(root, name)


def sweep_keys_override(swept: list[str]) -> str:
    """`++_sweep_keys_='a,b'`: quoted, so hydra reads one string, not a sweep over the keys."""
    return f"++_sweep_keys_='{','.join(swept)}'"


def run_job(cfg) -> int:
    """One multirun job: `rl-aux train <the job's overrides> run_dir=... resume=auto`."""
    from hydra.core.hydra_config import HydraConfig

    hc = HydraConfig.get()
    job = [o for o in hc.overrides.task if not o.startswith("hydra")]
    swept = set(cfg.get("_sweep_keys_", "").split(",")) - {""}
    root = cfg.run_dir or os.path.join("runs", cfg.experiment)
    root = os.path.join(hc.runtime.cwd, root)  # the sweep's cwd, not a Ray worker's
    cmd_overrides = [o for o in job if _key(o) not in ("run_dir", "resume", "_sweep_keys_")]
    run_dir = job_dir(root, job, swept)
    cmd = [sys.executable, "-m", "experiments.cli", "train", *cmd_overrides]
    cmd += [f"run_dir='{os.path.abspath(run_dir)}'", "resume=auto"]  # quoted: '=' and ','"
    print(f"rl-aux sweep: job {hc.job.num}: {run_dir}", file=sys.stderr, flush=True)
    record_placement(run_dir, hc.job.num)
    if _under_ray():  # a grandchild of the Ray worker, in its own group (experiments/job_guard.py)
        cmd = guarded_command(cmd)
    code = subprocess.run(cmd, check=False, preexec_fn=term_with_parent).returncode
    if code != 0:
        raise RuntimeError(f"rl-aux sweep: job {hc.job.num} ({run_dir}) exited with code {code}")
    return code


def placement() -> dict:
    """Where this job runs: host, pid, and the Ray node / SLURM job when under those launchers."""
    import socket

    out = {"host": socket.gethostname(), "pid": os.getpid(), "time": time.time()}
    if "ray" in sys.modules:  # the Ray launcher runs this function inside a Ray worker
        import ray

        if ray.is_initialized():
            ctx = ray.get_runtime_context()
            out["ray_node_id"] = ctx.get_node_id()
            node = next((n for n in ray.nodes() if n["NodeID"] == out["ray_node_id"]), {})
            out["ray_node_resources"] = sorted(node.get("Resources", {}))
    for key in ("SLURM_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURMD_NODENAME"):
        if key in os.environ:
            out[key.lower()] = os.environ[key]
    return out


def record_placement(run_dir: str, job_num: int) -> None:
    """Append this launch's placement to <run_dir>/placements.jsonl (one line per launch)."""
    os.makedirs(run_dir, exist_ok=True)
    with open(os.path.join(run_dir, "placements.jsonl"), "a") as f:
        f.write(json.dumps({"job": job_num, **placement()}) + "\n")


def _under_ray() -> bool:
    """Whether this job runs in a Ray worker (the ray launchers)."""
    ray = sys.modules.get("ray")
    return ray is not None and ray.is_initialized()


def check_sweep_values(argv: list[str]) -> None:
    """Validate every value of every swept key (each with the other keys' first values), so
    a typo in one job's value exits 2 here instead of failing that job after others ran."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    from experiments.compose import load_config

    parsed = OverridesParser.create().parse_overrides(
        [o for o in argv if not o.startswith(("-", "hydra"))]
    )
    fixed, swept = [], []
    for raw, o in zip([a for a in argv if not a.startswith(("-", "hydra"))], parsed, strict=True):
        if not o.is_sweep_override():
            fixed.append(raw)
            continue
        try:
            values = list(o.sweep_string_iterator())
        except (HydraException, ValueError):  # glob() needs the group's options: hydra checks
            fixed.append(raw)
            continue
        swept.append((o.get_key_element(), values))
    firsts = [f"{k}={v[0]}" for k, v in swept]
    for i, (key, values) in enumerate(swept):
        for v in values:
            load_config([*fixed, *firsts[:i], f"{key}={v}", *firsts[i + 1 :]])


def main(argv: list[str]) -> int:
    """`rl-aux sweep [overrides...]`: builds the hydra multirun command line and runs it."""
    import hydra

    try:  # bad input exits 2 naming the override, before hydra launches any job
        check_override_syntax([o for o in argv if not o.startswith("-")])
        import_plugins(argv)
        check_sweep_values(argv)
    except ConfigError as e:
        print(f"rl-aux sweep: config error: {e}", file=sys.stderr)
        return 2
    register_generated_groups()
    swept = sorted({_key(o) for o in argv if _is_swept(o)})
    root = next((o.split("=", 1)[1] for o in argv if o.startswith("run_dir=")), "")
    experiment = next((o.split("=", 1)[1] for o in argv if o.startswith("experiment=")), "")
    sweep_dir = os.path.join(root or os.path.join("runs", experiment or "default"), ".hydra")
    sweep_dir = os.path.abspath(sweep_dir)  # Ray workers run in another cwd
    args = [
        "--multirun",
        *[hydra_override(o) for o in argv],
        sweep_keys_override(swept),
        f"hydra.sweep.dir={sweep_dir}",
        "hydra.sweep.subdir=${hydra.job.num}",
    ]
    saved = sys.argv
    sys.argv = ["rl-aux-sweep", *args]
    try:
        hydra.main(config_path=CONFIG_DIR, config_name="config", version_base="1.3")(run_job)()
    except SystemExit as e:  # hydra exits on bad input
        return int(e.code or 0)
    finally:
        sys.argv = saved
    return 0
