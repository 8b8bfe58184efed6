"""Real engines on one machine: SLURM sweeps and preemption, jax.distributed, a 2-node Ray.

A real single-node SLURM (scripts/slurm_local.sh) runs `rl-aux sweep hydra/launcher=slurm_local`
(a 2x2 sweep, scancel and requeue preemption) and `srun -n 2` jax.distributed; two `rl-aux
train` processes join through a coordinator on 127.0.0.1; a Ray head and a second node run
`hydra/launcher=ray_cluster` sweeps. Marked `cluster` (not in the default run): `make
test-cluster` starts the local SLURM, runs these, and stops it. Run alone, the `slurm` fixture
starts its own cluster in a temp dir and stops it (by its pid files) when the session ends,
also after a failure; the `ray_cluster` fixture starts and stops (by pid) its own two nodes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "slurm_local.sh"
TINY = ["logger.progress=false", "eval.episodes=2"]


def _sinfo_ok(env: dict[str, str]) -> bool:
    """True when the cluster named by env's SLURM_CONF answers and its node is idle."""
    if not shutil.which("sinfo") or not env.get("SLURM_CONF"):
        return False
    out = subprocess.run(
        ["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True, check=False
    )
    return out.returncode == 0 and out.stdout.strip() in ("idle", "mixed", "allocated")


@pytest.fixture(scope="session")
def slurm(tmp_path_factory) -> dict[str, str]:
    """The environment of a running local SLURM: the one SLURM_CONF names, or our own."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if _sinfo_ok(env):
        yield env
        return
    run_dir = tmp_path_factory.mktemp("slurm")
    env = dict(env, SLURM_LOCAL_DIR=str(run_dir), SLURM_LOCAL_PORT="16837")
    env["SLURM_CONF"] = str(run_dir / "slurm.conf")
    try:
        subprocess.run([str(SCRIPT), "start"], env=env, check=True, timeout=600)
        yield env
    finally:
        subprocess.run([str(SCRIPT), "stop"], env=env, check=False, timeout=120)


def _sweep(env: dict[str, str], cwd: Path, args: list[str]) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "experiments.cli", "sweep", "hydra/launcher=slurm_local", *args]
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=900)


def _wait_queue_empty(env: dict[str, str], timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        out = subprocess.run(["squeue", "-h"], env=env, capture_output=True, text=True)
        if out.returncode == 0 and not out.stdout.strip():
            return
        time.sleep(1)
    raise AssertionError(f"squeue still busy after {timeout} s")


def test_slurm_sweep_2x2_writes_run_stores_and_rebuilds_the_figure(slurm, tmp_path):
    out = _sweep(
        slurm,
        tmp_path,
        [
            "head=reward_pred,next_latent",
            "seed=0,1",
            "total_timesteps=4096",
            *TINY,
            "run_dir=runs/slurm_cartpole",
        ],
    )
    assert out.returncode == 0, out.stderr[-3000:]
    root = tmp_path / "runs" / "slurm_cartpole"
    names = sorted(p.name for p in root.iterdir() if (p / "metrics.csv").exists())
    assert names == [f"head={h},seed={s}" for h in ("next_latent", "reward_pred") for s in (0, 1)]
    for name in names:
        assert json.loads((root / name / "status.json").read_text())["status"] == "finished"
        df = pd.read_csv(root / name / "metrics.csv")
        assert df["global_step"].max() == 4096 and df["seed"].nunique() == 1
    jobs = sorted(p.name for p in (root / ".hydra" / ".submitit").glob("*_*") if p.is_dir())
    assert len(jobs) == 4  # four array tasks of one sbatch array job
    for job in jobs:  # every job ran under SLURM on this host and returned a result
        assert (root / ".hydra" / ".submitit" / job / f"{job}_0_result.pkl").exists()

    from experiments.figure_spec import main as plot_main  # rl-aux plot --figure

    spec = ROOT / "experiments" / "figures" / "slurm_cartpole.yaml"
    figs = tmp_path / "figs"
    assert plot_main(["--figure", str(spec), "--base", str(tmp_path), "--out", str(figs)]) == 0
    scores = pd.read_csv(figs / "scores.csv")
    assert sorted(scores["algorithm"].unique()) == ["ppo+next_latent", "ppo+reward_pred"]
    assert scores.groupby("algorithm")["seed"].apply(sorted).tolist() == [[0, 1], [0, 1]]
    for name in ("curves", "aggregates", "profile", "improvement"):
        assert (figs / f"{name}.png").stat().st_size > 0


def test_slurm_preempted_job_checkpoints_and_relaunch_resumes_it(slurm, tmp_path):
    args = [
        "seed=0,1",
        "total_timesteps=40960",
        "logger.log_interval=1024",
        "checkpoint.every=8192",
        *TINY,
        "run_dir=runs/pre",
    ]
    cmd = [sys.executable, "-m", "experiments.cli", "sweep", "hydra/launcher=slurm_local", *args]
    proc = subprocess.Popen(
        cmd, env=slurm, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    root = tmp_path / "runs" / "pre"
    first = root / "seed=0" / "metrics.csv"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if first.exists() and len(pd.read_csv(first)) >= 2:  # seed 0 is training
            break
        time.sleep(0.2)
    job = next((root / ".hydra" / ".submitit").glob("*_0")).name  # array task of seed=0
    subprocess.run(["scancel", "--signal=TERM", job], env=slurm, check=True)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode != 0
    assert "exited with code 143" in err, err[-3000:]
    status = json.loads((root / "seed=0" / "status.json").read_text())
    assert status["status"] == "preempted" and status["signal"] == 15
    assert status["global_step"] < 40960
    _wait_queue_empty(slurm)
    other = root / "seed=1" / "metrics.csv"
    assert json.loads((root / "seed=1" / "status.json").read_text())["status"] == "finished"
    before = (other.stat().st_mtime_ns, other.read_bytes())

    out = _sweep(slurm, tmp_path, args)
    assert out.returncode == 0, out.stderr[-3000:]
    logs = "".join(p.read_text() for p in root.glob(".hydra/.submitit/*/*_log.err"))
    assert "resuming" in logs and "already finished" in logs
    assert (other.stat().st_mtime_ns, other.read_bytes()) == before  # finished: not re-run
    for seed in (0, 1):
        df = pd.read_csv(root / f"seed={seed}" / "metrics.csv")
        assert list(df["global_step"]) == list(range(1024, 40961, 1024))  # none lost or twice
        assert json.loads((root / f"seed={seed}" / "status.json").read_text())["status"] == (
            "finished"
        )


def test_slurm_requeued_job_resumes_on_its_rerun(slurm, tmp_path):
    args = [
        "seed=0",
        "total_timesteps=204800",
        "logger.log_interval=512",
        "checkpoint.every=8192",
        *TINY,
        "run_dir=runs/rq",
    ]
    cmd = [sys.executable, "-m", "experiments.cli", "sweep", "hydra/launcher=slurm_local", *args]
    proc = subprocess.Popen(
        cmd, env=slurm, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    run = tmp_path / "runs" / "rq" / "run"  # no swept key: the job's run dir is <root>/run
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if (run / "metrics.csv").exists() and len(pd.read_csv(run / "metrics.csv")) >= 20:
            break
        time.sleep(0.2)
    job = subprocess.run(
        ["squeue", "-h", "-o", "%i"], env=slurm, capture_output=True, text=True, check=True
    ).stdout.split()[0]
    subprocess.run(["scontrol", "requeue", job], env=slurm, check=True)
    _, err = proc.communicate(timeout=600)
    assert "exited with code 143" in err, err[-3000:]  # the sweep saw the first attempt end
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "preempted" and status["signal"] == 15
    _wait_queue_empty(slurm, timeout=600)  # SLURM reruns the job (eligible 120 s later)
    assert json.loads((run / "status.json").read_text())["status"] == "finished"
    df = pd.read_csv(run / "metrics.csv")
    assert list(df["global_step"]) == list(range(512, 204801, 512))  # none lost or twice
    assert len((run / "placements.jsonl").read_text().splitlines()) == 2  # two attempts
    logs = "".join(p.read_text() for p in run.parents[0].glob(".hydra/.submitit/*/*_log.err"))
    assert "resuming" in logs


# ---------------------------------------------------------------- jax.distributed, 2 processes
DIST = [
    "num_seeds=2",
    "total_timesteps=8192",
    "logger.log_interval=512",
    "checkpoint.every=2048",
    "run_batching=map",  # each run's program is the same whatever the runs per device
    *TINY,
]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_processes(run_dir: Path, extra: list[str], logs: Path) -> list[subprocess.Popen]:
    """Two `rl-aux train` processes joined through a coordinator on 127.0.0.1."""
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = []
    for pid in (0, 1):
        cmd = [
            sys.executable,
            "-m",
            "experiments.cli",
            "train",
            *DIST,
            *extra,
            f"run_dir={run_dir}",
            f"distributed.coordinator_address=127.0.0.1:{port}",
            "distributed.num_processes=2",
            f"distributed.process_id={pid}",
        ]
        log = open(logs / f"process{pid}.log", "a")
        procs.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT))
    return procs


def _wait_all(procs: list[subprocess.Popen], timeout: float = 400) -> list[int]:
    deadline = time.time() + timeout
    for p in procs:
        p.wait(timeout=max(deadline - time.time(), 1))
    return [p.returncode for p in procs]


def _metrics(run_dir: Path) -> pd.DataFrame:
    from rl_aux.run_loop import WALL_CLOCK_COLUMNS

    return pd.read_csv(run_dir / "metrics.csv").drop(columns=list(WALL_CLOCK_COLUMNS))


def test_two_process_distributed_run_equals_one_process_and_resumes(tmp_path):
    one = tmp_path / "one"
    cmd = [sys.executable, "-m", "experiments.cli", "train", *DIST, f"run_dir={one}"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400)
    assert out.returncode == 0, out.stderr[-3000:]

    two = tmp_path / "two"
    procs = _two_processes(two, [], tmp_path)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and all(p.poll() is None for p in procs):
            if (two / "metrics.csv").exists() and len(pd.read_csv(two / "metrics.csv")) >= 6:
                break
            time.sleep(0.2)
        procs[1].send_signal(15)  # one process signalled: both stop at the same chunk
        codes = _wait_all(procs)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    logs = "".join(p.read_text() for p in tmp_path.glob("process*.log"))
    assert codes == [143, 143], logs[-3000:]
    status = json.loads((two / "status.json").read_text())
    assert status["status"] == "preempted" and status["global_step"] < 8192
    meta = json.loads((two / "meta.json").read_text())
    assert len(meta["devices"]) == 2 and meta["run_devices"] == 2  # one device per process

    procs = _two_processes(two, ["resume=true"], tmp_path)
    try:
        codes = _wait_all(procs)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    logs = "".join(p.read_text() for p in tmp_path.glob("process*.log"))
    assert codes == [0, 0], logs[-3000:]
    assert logs.count("resuming") == 2  # both processes restored the same checkpoint
    assert json.loads((two / "status.json").read_text())["status"] == "finished"
    pd.testing.assert_frame_equal(_metrics(one), _metrics(two), check_exact=True)


def test_srun_two_tasks_join_jax_distributed_and_equal_one_process(slurm, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    cmd = [sys.executable, "-m", "experiments.cli", "train", *DIST]
    out = subprocess.run([*cmd, f"run_dir={one}"], env=slurm, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    # process count and ids come from SLURM_NTASKS / SLURM_PROCID; only the coordinator is
    # given, on 127.0.0.1 (jax would take the first node's hostname)
    srun = ["srun", "-p", "local", "-n", "2", "--cpus-per-task=1", "--kill-on-bad-exit=1"]
    coord = f"distributed.coordinator_address=127.0.0.1:{_free_port()}"
    out = subprocess.run(
        [*srun, *cmd, f"run_dir={two}", coord],
        env=slurm,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    meta = json.loads((two / "meta.json").read_text())
    assert len(meta["devices"]) == 2 and meta["run_devices"] == 2
    pd.testing.assert_frame_equal(_metrics(one), _metrics(two), check_exact=True)


# ---------------------------------------------------------------- Ray: a head and a second node
RAY = str(Path(sys.executable).with_name("ray"))
RAY_NODE_IP = "127.0.0.2"  # loopback, and left as it is by Ray (see ray_cluster)


def _ray_nodes(env: dict[str, str], address: str) -> int:
    out = subprocess.run(
        [RAY, "status", f"--address={address}"], env=env, capture_output=True, text=True
    )
    return sum(1 for line in out.stdout.splitlines() if line.strip().startswith("1 node_"))


def _stop(proc: subprocess.Popen) -> None:
    """Stop a `ray start --block` node: SIGTERM makes it stop the node's processes."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


def _descendants(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    kids = [int(k) for k in out.stdout.split()]
    return kids + [d for k in kids for d in _descendants(k)]


def _kill_node(proc: subprocess.Popen) -> None:
    """A node lost (a preempted VM): SIGKILL its raylet first, then, once its Ray workers have
    noticed (they kill their direct children when the raylet dies), everything else of the
    node: `ray start`, its reaper, the workers.

    The rl-aux train processes are left to their parent-death signal (SIGTERM,
    experiments/job_guard.py), as on a VM whose Ray daemons die first."""
    procs = [proc.pid, *_descendants(proc.pid)]
    cmdlines = {}
    for pid in procs:
        try:
            cmdlines[pid] = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
    ours = [p for p, c in cmdlines.items() if b"experiments." in c]  # the guards and trainers
    raylets = [p for p, c in cmdlines.items() if b"raylet" in c.split(b"\0")[0]]
    assert ours and raylets, cmdlines
    for pid in raylets:
        os.kill(pid, 9)
    time.sleep(5)  # a worker checks its raylet about once a second
    for pid in cmdlines:
        if pid not in ours and pid not in raylets:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
    proc.wait(timeout=30)


@pytest.fixture
def ray_cluster(tmp_path):
    """A Ray head (resource node_head) and a second node (node_b), 1 CPU each, on this host.

    Both are `ray start --block` children of the test, stopped by their pids afterwards (never
    `ray stop`, which would stop every Ray on the machine). A token of our own authenticates
    them (Ray's default token file in ~/.ray is shared with other users of the host)."""
    import secrets
    import tempfile

    temp = tempfile.mkdtemp(prefix="rlray", dir="/tmp")  # short: Ray's socket paths
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT), RAY_USAGE_STATS_ENABLED="0")
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    env.pop("RAY_ADDRESS", None)
    # Ray rewrites a node IP of 127.0.0.1 (or localhost) to the host's interface address
    # (ray._private.services.resolve_ip_for_localhost), so its nodes would talk over it;
    # 127.0.0.2 is not rewritten and is still the loopback interface
    address = f"{RAY_NODE_IP}:{port}"
    common = ["--block", f"--node-ip-address={RAY_NODE_IP}", "--num-cpus=1"]
    common.append("--disable-usage-stats")
    logs = open(tmp_path / "ray_nodes.log", "a")
    nodes = {}
    try:
        nodes["head"] = subprocess.Popen(
            [RAY, "start", "--head", f"--port={port}", f"--temp-dir={temp}", *common]
            + ["--include-dashboard=false", '--resources={"node_head": 1}'],
            env=env,
            stdout=logs,
            stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 120
        while _ray_nodes(env, address) < 1:
            assert time.time() < deadline and nodes["head"].poll() is None, "no Ray head"
            time.sleep(1)
        nodes["node_b"] = subprocess.Popen(
            [RAY, "start", f"--address={address}", *common, '--resources={"node_b": 1}'],
            env=env,
            stdout=logs,
            stderr=subprocess.STDOUT,
        )
        while _ray_nodes(env, address) < 2:
            assert time.time() < deadline and nodes["node_b"].poll() is None, "no 2nd node"
            time.sleep(1)
        yield env, address, nodes
    finally:
        for name in ("node_b", "head"):
            if name in nodes:
                _stop(nodes[name])
        logs.close()
        shutil.rmtree(temp, ignore_errors=True)


def _ray_sweep(env, address, cwd: Path, args: list[str], **kw):
    cmd = [sys.executable, "-m", "experiments.cli", "sweep", "hydra/launcher=ray_cluster"]
    cmd += [f"hydra.launcher.ray.init.address={address}", *args]
    if kw.pop("background", False):
        return subprocess.Popen(
            cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=900)


def _placements(run_dir: Path) -> list[dict]:
    lines = (run_dir / "placements.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_ray_sweep_places_jobs_on_both_nodes(ray_cluster, tmp_path):
    env, address, _ = ray_cluster
    out = _ray_sweep(
        env, address, tmp_path, ["seed=0,1", "total_timesteps=2048", *TINY, "run_dir=runs/ray"]
    )
    assert out.returncode == 0, out.stderr[-3000:]
    root = tmp_path / "runs" / "ray"
    where = {}
    for seed in (0, 1):
        assert json.loads((root / f"seed={seed}" / "status.json").read_text())["status"] == (
            "finished"
        )
        (p,) = _placements(root / f"seed={seed}")
        where[seed] = (
            p["ray_node_id"],
            next(r for r in p["ray_node_resources"] if r.startswith("node_") and ":" not in r),
        )
    assert len({w[0] for w in where.values()}) == 2  # two Ray nodes
    assert sorted(w[1] for w in where.values()) == ["node_b", "node_head"]


def test_ray_node_killed_mid_sweep_then_relaunch_resumes(ray_cluster, tmp_path):
    env, address, nodes = ray_cluster
    args = [
        "seed=0,1",
        "total_timesteps=40960",
        "logger.log_interval=1024",
        "checkpoint.every=8192",
        "+hydra.launcher.ray.remote.max_retries=0",  # the lost job fails the sweep
        *TINY,
        "run_dir=runs/rpre",
    ]
    root = tmp_path / "runs" / "rpre"
    proc = _ray_sweep(env, address, tmp_path, args, background=True)
    try:
        lost = None
        deadline = time.time() + 400
        while lost is None and time.time() < deadline and proc.poll() is None:
            for seed in (0, 1):
                run = root / f"seed={seed}"
                if (run / "placements.jsonl").exists() and (run / "metrics.csv").exists():
                    on_b = "node_b" in _placements(run)[0]["ray_node_resources"]
                    if on_b and len(pd.read_csv(run / "metrics.csv")) >= 2:
                        lost = seed
            time.sleep(0.2)
        assert lost is not None, "the job on node_b never trained"
        _kill_node(nodes["node_b"])  # the node goes away mid-job
        _, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0, err[-3000:]
    deadline = time.time() + 120  # the trainer outlives its worker until it checkpoints
    while time.time() < deadline:
        status = json.loads((root / f"seed={lost}" / "status.json").read_text())
        if status["status"] != "running":
            break
        time.sleep(0.5)
    # the trainer got SIGTERM when its Ray worker died, checkpointed and stopped
    assert status["status"] == "preempted" and status["signal"] == 15, status
    assert status["global_step"] < 40960
    other = root / f"seed={1 - lost}" / "metrics.csv"
    assert json.loads((other.parent / "status.json").read_text())["status"] == "finished"
    before = (other.stat().st_mtime_ns, other.read_bytes())

    out = _ray_sweep(env, address, tmp_path, args)  # only the head is left
    assert out.returncode == 0, out.stderr[-3000:]
    assert "resuming" in out.stderr and "already finished" in out.stderr
    assert (other.stat().st_mtime_ns, other.read_bytes()) == before
    for seed in (0, 1):
        df = pd.read_csv(root / f"seed={seed}" / "metrics.csv")
        assert list(df["global_step"]) == list(range(1024, 40961, 1024))  # none lost or twice
    assert "node_head" in _placements(root / f"seed={lost}")[-1]["ray_node_resources"]
