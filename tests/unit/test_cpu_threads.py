"""cpu_threads: validation, the auto rule, and that it takes effect before the backend starts."""

import os
import subprocess
import sys

import pytest

from rl_aux.cpu_threads import PARALLEL_BATCH, resolve_cpu_threads
from rl_aux.typed_config import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_auto_is_one_thread_for_mlp_and_all_cores_for_cnns():
    assert resolve_cpu_threads("auto", "mlp") == 1
    assert resolve_cpu_threads("auto", "nature_cnn") is None
    assert resolve_cpu_threads("auto", "impala_cnn") is None
    assert resolve_cpu_threads(2, "mlp") == 2
    assert resolve_cpu_threads("3", "nature_cnn") == 3


def test_auto_gives_large_mlp_gradient_batches_every_core():
    """PPO on MinAtar (MLP, 1,024 samples per minibatch) gains from the second core; CartPole's
    128 do not: the pool follows the work of one gradient step, not the torso's name."""
    from experiments.compose import gradient_batch, load_config, torso_name

    def auto(experiment: str) -> int | None:
        agent = load_config([f"experiment={experiment}"]).agent
        return resolve_cpu_threads("auto", torso_name(agent), gradient_batch(agent))

    assert gradient_batch(load_config(["experiment=ppo_minatar"]).agent) == 64 * 128 // 8
    assert auto("ppo_minatar") is None
    assert auto("ppo_cartpole") == 1 and auto("dqn_cartpole") == 1
    assert resolve_cpu_threads("auto", "mlp", PARALLEL_BATCH - 1) == 1
    assert resolve_cpu_threads("auto", "mlp", PARALLEL_BATCH) is None


@pytest.mark.parametrize("bad", [0, -1, "many", "1.5", None])
def test_bad_values_name_the_field_and_the_accepted_values(bad):
    with pytest.raises(ConfigError, match=r"cpu_threads=.*Accepted: auto, or an integer >= 1"):
        resolve_cpu_threads(bad, "mlp")


def test_config_rejects_bad_cpu_threads():
    from experiments.compose import load_config

    with pytest.raises(ConfigError, match="cpu_threads"):
        load_config(["experiment=ppo_cartpole", "cpu_threads=zero"])


_PROBE = """
import os, pkgutil, importlib
from jax._src import xla_bridge as xb
import rl_aux, agents, envs, experiments
for pkg in (rl_aux, agents, envs, experiments):
    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
        if m.name.split(".")[-1] in ("__main__", "cli"):
            continue
        importlib.import_module(m.name)
assert not xb.backends_are_initialized(), "importing the package started the jax backend"
from experiments.compose import load_config, torso_name
from rl_aux.cpu_threads import configure_cpu_threads
cfg = load_config(["experiment=ppo_cartpole"])
assert not xb.backends_are_initialized(), "load_config started the jax backend"
print(configure_cpu_threads(cfg.cpu_threads, torso_name(cfg.agent)), os.environ.get("PJRT_NPROC"))
"""


def _probe(env_extra: dict) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PJRT_NPROC"} | env_extra
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip().splitlines()[-1]


def test_auto_sets_one_thread_before_the_backend_starts():
    # Importing any module or composing a config must not start jax's backend, or the
    # thread pool (sized when it starts) can no longer be chosen.
    assert _probe({}) == "1 1"


def test_users_pjrt_nproc_wins():
    assert _probe({"PJRT_NPROC": "2"}) == "2 2"
