"""Every head module in rl_aux/heads/ is built in: selectable as `head=<name>` with no plugin."""

import importlib
import inspect
import json
import os
import pkgutil
import subprocess
import sys

import rl_aux.heads
from rl_aux.heads import AuxHead

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _heads_defined_in_the_package() -> dict[str, str]:
    """name -> module of every registered AuxHead class defined in a module of rl_aux/heads/."""
    found = {}
    for info in pkgutil.iter_modules(rl_aux.heads.__path__):
        mod = importlib.import_module(f"rl_aux.heads.{info.name}")
        for _, cls in inspect.getmembers(mod, inspect.isclass):
            if issubclass(cls, AuxHead) and cls.__module__ == mod.__name__ and cls.name:
                found[cls.name] = mod.__name__
    return found


def test_every_head_module_in_the_package_is_registered_without_plugins():
    # a fresh interpreter: this session's registry may hold plugin heads of other tests
    code = (
        "import json; from rl_aux.heads import registered_heads; "
        "print(json.dumps(registered_heads()))"
    )
    env = {**os.environ, "PYTHONPATH": ROOT}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    builtin = set(json.loads(out.stdout.strip().splitlines()[-1]))
    defined = _heads_defined_in_the_package()
    assert {"next_obs", "noise_target"} <= set(defined), defined
    missing = {n: m for n, m in defined.items() if n not in builtin}
    assert not missing, f"heads in rl_aux/heads/ that need a plugin path: {missing}"


def test_next_obs_and_noise_target_compose_without_a_plugin_path(tmp_path):
    from experiments.compose import load_config

    cfg = load_config(
        [
            "head=[next_obs,noise_target]",
            "heads.next_obs.hidden=32",
            "heads.noise_target.target=random_fn",
            f"run_dir={tmp_path}",
        ]
    )
    assert cfg.plugins == ()
    assert cfg.heads["next_obs"].hidden == 32
    assert cfg.heads["noise_target"].target == "random_fn"
