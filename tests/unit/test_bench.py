"""The bench package: FLOP counting through loops, roofline shares, head ratios, the CLI's
input checks, and one-way imports inside experiments/bench/."""

from __future__ import annotations

import ast
import json
import pathlib

import jax
import jax.numpy as jnp
import pytest

from experiments.bench import cli, heads, roofline

BENCH = pathlib.Path(__file__).resolve().parents[2] / "experiments" / "bench"


def test_scans_count_their_length_and_xla_counts_the_body_once():
    x = jnp.ones((32, 16))
    w = jnp.ones((16, 16))

    def f(x, w):
        return jax.lax.fori_loop(0, 10, lambda _, y: y @ w, x)

    compiled, _, cost = roofline.compile_with_cost(jax.jit(f), x, w)
    one = 2 * 32 * 16 * 16
    assert cost["matmul_flops"] == 10 * one and cost["while_loops"] == 0
    assert cost["xla_flops"] == pytest.approx(one, rel=0.01)  # why the jaxpr count exists
    assert roofline.xla_flops(compiled) == cost["xla_flops"]


def test_dot_and_conv_flops_equal_xla_on_loop_free_programs():
    x = jnp.ones((4, 10, 10, 3))
    k = jnp.ones((3, 3, 3, 8))
    a, b = jnp.ones((2, 5, 7)), jnp.ones((2, 7, 3))

    def conv(x, k):
        return jax.lax.conv_general_dilated(
            x, k, (2, 2), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )

    def bdot(a, b):
        return jnp.einsum("bij,bjk->bik", a, b)

    for f, args in ((conv, (x, k)), (bdot, (a, b))):
        _, _, cost = roofline.compile_with_cost(jax.jit(f), *args)
        assert cost["matmul_flops"] == pytest.approx(cost["xla_flops"], rel=0.01), f.__name__


def test_fractions_best_of_and_head_ratios():
    def roof(small: float, large: float) -> dict:
        return {
            "backend": "cpu",
            "device": "cpu",
            "small": {"shape": [1, 64, 64], "reps": 1, "flops_per_s": small},
            "large": {"shape": [2, 2, 2], "flops_per_s": large},
        }

    best = roofline.best_of(roof(10.0, 100.0), roof(20.0, 50.0), {"error": ["x"]})
    assert best["small"]["flops_per_s"] == 20.0 and best["large"]["flops_per_s"] == 100.0
    got = roofline.fractions(40.0, 2.0, best)
    assert got == {"flops_per_s": 20.0, "roof_small": 1.0, "roof_large": 0.2}
    assert roofline.fractions(None, 2.0, best) == {}
    res = {"plain": {"run_s": 1.0, "flops": 100.0}, "a": {"run_s": 3.0, "flops": 200.0},
           "b": {"error": ["boom"]}}  # fmt: skip
    r = heads.ratios(res)
    assert r == {"a": {"time_ratio": 3.0, "flop_ratio": 2.0, "quotient": 1.5}}
    assert list(heads.arms(["x", "y"])) == ["plain", "x", "y", "all"]
    assert heads.arms(["x", "y"])["all"] == ["head=[x,y]"]


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--suite", "heads", "--cases", "ppo/Nope"], "--cases ['ppo/Nope'] not in suite heads"),
        (["--suite", "heads", "--heads", "nope"], "--heads ['nope'] not registered"),
        (
            ["--suite", "heads", "--plugins", "nope.py"],
            "--plugins: plugins: cannot import 'nope.py'",
        ),
        (["--suite", "core", "--cases", "x"], "not in suite core"),
        (["--seeds", "a"], "--seeds='a'"),
        (["--repeats", "0"], "--repeats=0"),
    ],
)
def test_bad_input_exits_2_naming_the_value(argv, needle, capsys):
    assert cli.main(argv) == 2
    assert needle in capsys.readouterr().err


def test_cleanrl_harness_checks_its_checkout_and_paces_windows_by_stdin(
    tmp_path, monkeypatch, capsys
):
    """The shipped CleanRL harness: a missing checkout or script exits 2 naming --cleanrl-dir,
    its value and what is expected; its clock answers `go K` with a window of K iterations
    (steps from the script's global_step) and stops on `quit`."""
    import io

    from experiments.bench.peers import cleanrl

    monkeypatch.delenv("CLEANRL_DIR", raising=False)
    missing = str(tmp_path / "nope")
    cases = [
        ([], "--cleanrl-dir is not set"),
        (["--cleanrl-dir", missing], f"--cleanrl-dir {missing!r}: not a directory"),
        (["--cleanrl-dir", str(tmp_path)], "no cleanrl/dqn_atari_jax.py (--algo dqn)"),
    ]
    for argv, needle in cases:
        with pytest.raises(SystemExit) as e:
            cleanrl.main(["--algo", "dqn", *argv, "--", "--total-timesteps", "10"])
        assert e.value.code == 2
        assert needle in capsys.readouterr().err
    out = io.StringIO()
    clock = cleanrl.Clock("charts/SPS", out, io.StringIO("go 2\nquit\n"))
    writer = cleanrl.writer_module(clock).SummaryWriter("runs/x")
    writer.add_scalar("charts/SPS", 1, 1100)  # first timed iteration: ready, reads `go 2`
    writer.add_scalar("losses/td_loss", 0.5, 1200)  # other tags are not the clock
    writer.add_scalar("charts/SPS", 1, 1200)
    with pytest.raises(cleanrl.Stop):
        writer.add_scalar("charts/SPS", 1, 1300)  # window done, reads `quit`
    msgs = [json.loads(line[3:]) for line in out.getvalue().splitlines()]
    assert [m["event"] for m in msgs] == ["ready", "window"]
    assert msgs[0]["steps_at_ready"] == 1100 and (msgs[1]["steps"], msgs[1]["k"]) == (200, 2)


def test_bench_cli_takes_the_shipped_cleanrl_harness_and_checks_its_options(
    tmp_path, monkeypatch, capsys
):
    """`--cleanrl-harness experiments/bench/peers/cleanrl.py` reaches the atari suite with the
    peer options; a missing harness file or checkout dir, or an unknown variant, exits 2."""
    from experiments.bench import atari

    seen = {}

    def fake_main(*args):
        seen["peers"] = args[5]
        return 0

    monkeypatch.setattr(atari, "main", fake_main)
    harness = str(BENCH / "peers" / "cleanrl.py")
    base = ["--suite", "atari", "--cleanrl-harness", harness, "--cleanrl-dir", str(tmp_path)]
    assert cli.main([*base, "--cleanrl-variants", "unrolled"]) == 0
    assert seen["peers"]["harness"] == harness and seen["peers"]["variants"] == ("unrolled",)
    bad = [
        (["--suite", "atari", "--cleanrl-harness", "nope.py"], "--cleanrl-harness='nope.py'"),
        ([*base[:3], harness, "--cleanrl-dir", "/nonexistent"], "--cleanrl-dir='/nonexistent'"),
        ([*base, "--cleanrl-variants", "rolled"], "--cleanrl-variants='rolled'"),
    ]
    for argv, needle in bad:
        assert cli.main(argv) == 2
        assert needle in capsys.readouterr().err


LAYERS = [  # top to bottom: a module may import only modules of lower layers
    {"cli"},
    {"gpu_check"},
    {"core", "heads", "blend", "atari", "nethack", "llm"},
    {"atari_peers"},
    {"chunks"},
    {"roofline", "runner"},
]


def _bench_imports(path: pathlib.Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "experiments.bench":
                out |= {a.name for a in node.names}
            elif node.module.startswith("experiments.bench."):
                out.add(node.module.split(".")[2])
        elif isinstance(node, ast.Import):
            out |= {
                a.name.split(".")[2] for a in node.names if a.name.startswith("experiments.bench.")
            }
    return out


def test_bench_modules_import_one_way():
    layer = {m: i for i, names in enumerate(LAYERS) for m in names}
    files = {p.stem: p for p in BENCH.glob("*.py") if not p.stem.startswith("__")}
    assert set(files) == set(layer), "a new bench module needs a place in LAYERS"
    for name, path in files.items():
        for dep in _bench_imports(path):
            assert layer[dep] > layer[name], f"experiments.bench.{name} imports {dep} (upward)"


def test_cond_counts_its_dearest_branch_and_keeps_the_cheapest():
    x = jnp.ones((8, 8))

    def f(p, x):
        return jax.lax.cond(p, lambda y: y @ y @ y, lambda y: y, x)

    _, _, cost = roofline.compile_with_cost(jax.jit(f), True, x)
    assert cost["matmul_flops"] == 2 * (2 * 8**3) and cost["flops_min"] == 0
    assert cost["conds"] == 1


def test_heads_worker_times_plain_and_head_arms_with_more_flops_for_the_head():
    """A plugin's head (the inverse-dynamics example) is timed like a built-in one."""
    plugin = "examples.plugins.inverse_dynamics"  # as a module: other tests import it so too
    res = heads.worker("heads", ["ppo/CartPole-v1", "1", "512", "2", "inverse_dynamics", plugin])
    assert set(res) == {"plain", "inverse_dynamics"}  # one head: no `all` arm
    plain, head = res["plain"], res["inverse_dynamics"]
    assert len(plain["runs_s"]) == 2 and plain["updates"] == 1 and plain["steps_per_s"] > 0
    assert head["flops"] > plain["flops"] > plain["xla_flops"] > 0
    r = heads.ratios(res)["inverse_dynamics"]
    assert r["flop_ratio"] > 1 and r["quotient"] == pytest.approx(r["time_ratio"] / r["flop_ratio"])


def test_purejaxrl_harness_adapts_gymnax_flags_and_counts_the_peers_steps(tmp_path):
    """The shipped PureJaxRL harness: gymnax >= 1.0's (terminated, truncated) -> PureJaxRL's
    `done`; env steps as PureJaxRL's own NUM_UPDATES rounding takes them; no checkout -> exit 2
    naming the flag."""
    from experiments.bench.peers import purejaxrl

    class SixTuple:
        def step(self, key, state, action, params=None):
            return "obs", state, 1.0, jnp.array(False), jnp.array(True), {}

    out = purejaxrl.five_tuple(SixTuple()).step(None, "s", 0)
    assert len(out) == 5 and bool(out[3])
    ppo = dict(purejaxrl.CONFIGS[("ppo", "Breakout-MinAtar")], TOTAL_TIMESTEPS=10_000, NUM_ENVS=64)
    assert purejaxrl.env_steps("ppo", ppo) == 8192  # one update of 128 x 64
    dqn = dict(purejaxrl.CONFIGS[("dqn", "CartPole-v1")], TOTAL_TIMESTEPS=1005, NUM_ENVS=10)
    assert purejaxrl.env_steps("dqn", dqn) == 1000
    argv = ["--purejaxrl-dir", str(tmp_path), "--algo", "ppo", "--env", "CartPole-v1"]
    argv += ["--total-timesteps", "1000", "--num-envs", "4", "--json", str(tmp_path / "o")]
    with pytest.raises(SystemExit) as e:
        purejaxrl.main(argv)
    assert e.value.code == 2
