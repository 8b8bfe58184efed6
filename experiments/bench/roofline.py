"""FLOPs of a compiled learner chunk, and this machine's attainable f32 matmul FLOP/s.

Two FLOP counts per program:
- `xla_flops`: XLA's own cost analysis of the compiled program (`compiled.cost_analysis()`).
  XLA counts a while loop's body once, whatever its trip count (a `fori_loop` of 10 matmuls
  reports the FLOPs of one), and a learner's chunk is loops all the way down (updates, rollout
  steps, epochs, minibatches), so this figure undercounts by orders of magnitude;
- `flops`: the same kinds of operation counted on the program's jaxpr with every `scan`
  multiplied by its length (dot_general and convolutions exactly, 2 per multiply-add; float
  elementwise ops and reductions 1 per element; integer ops, e.g. threefry, not counted). A
  `while` with a dynamic trip count is counted once and reported in `while_loops`; a `cond`
  counts its dearest branch in `flops` (an upper bound) and its cheapest in `flops_min`, so
  a DQN still filling its buffer (`lax.cond` on learning_starts) shows flops_min << flops:
  bench it with learning on, as the heads suite does.
The roofline is a jitted f32 matmul at a learner's typical size (a batch through a 64 x 64
layer, repeated inside one program as a learner's layers are) and at a large size (2048^3):
achieved FLOP/s = `flops` / run seconds, reported as a fraction of each.
"""

from __future__ import annotations

import math
import time

FLOAT_ELEMENTWISE = frozenset(
    "add sub mul div rem max min neg abs sign exp exp2 expm1 log log1p tanh logistic sin cos "
    "sqrt rsqrt cbrt pow integer_pow square erf erf_inv erfc lgamma digamma atan2 tan clamp "
    "select_n nextafter floor ceil round is_finite".split()
)
REDUCTIONS = frozenset(
    "reduce_sum reduce_max reduce_min reduce_prod argmax argmin cumsum cumprod cummax cummin "
    "cumlogsumexp reduce_precision".split()
)
SMALL_BATCH = 1024  # rows through a 64 x 64 layer: a PPO minibatch / DQN batch x seeds scale
SMALL_REPS = 200  # matmuls per program at the small size (one chunk's layer applications)
LARGE_N = 2048


def xla_flops(compiled) -> float | None:
    """XLA's cost-analysis FLOPs of a compiled program; None where the backend has none."""
    try:
        cost = compiled.cost_analysis()
    except Exception:  # noqa: BLE001 - backends without cost analysis raise various errors
        return None
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else None
    if not cost or "flops" not in cost:
        return None
    return float(cost["flops"])


def _size(aval) -> int:
    return math.prod(aval.shape) if hasattr(aval, "shape") else 1


def _is_float(aval) -> bool:
    import jax.numpy as jnp

    return hasattr(aval, "dtype") and jnp.issubdtype(aval.dtype, jnp.floating)


def _dot_flops(eqn) -> int:
    (lc, _), _ = eqn.params["dimension_numbers"]
    lhs = eqn.invars[0].aval
    return 2 * _size(eqn.outvars[0].aval) * math.prod(lhs.shape[i] for i in lc)


def _conv_flops(eqn) -> int:
    rhs = eqn.invars[1].aval
    out_dim = eqn.params["dimension_numbers"].rhs_spec[0]
    return 2 * _size(eqn.outvars[0].aval) * _size(rhs) // rhs.shape[out_dim]


def count_flops(jaxpr) -> dict:
    """{flops, flops_min, matmul_flops, while_loops, conds} of a (closed) jaxpr, scans times
    their length."""
    from jax.extend import core

    jaxpr = jaxpr.jaxpr if isinstance(jaxpr, core.ClosedJaxpr) else jaxpr
    total = {"flops": 0, "flops_min": 0, "matmul_flops": 0, "while_loops": 0, "conds": 0}
    counts = ("while_loops", "conds")  # program structure: not multiplied by trip counts

    def add(sub: dict, times: int = 1) -> None:
        for k in total:
            total[k] += sub[k] * (1 if k in counts else times)

    def arith(f: int, matmul: bool = False) -> None:
        total["flops"] += f
        total["flops_min"] += f
        total["matmul_flops"] += f if matmul else 0

    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name == "scan":
            add(count_flops(eqn.params["jaxpr"]), eqn.params["length"])
        elif name == "while":
            add(count_flops(eqn.params["body_jaxpr"]))
            add(count_flops(eqn.params["cond_jaxpr"]))
            total["while_loops"] += 1
        elif name == "cond":  # flops: the dearest branch; flops_min: the cheapest
            subs = [count_flops(b) for b in eqn.params["branches"]]
            hi = max(subs, key=lambda s: s["flops"])
            add({**hi, "flops_min": min(s["flops_min"] for s in subs)})
            total["conds"] += 1
        elif name == "dot_general":
            arith(_dot_flops(eqn), matmul=True)
        elif name == "conv_general_dilated":
            arith(_conv_flops(eqn), matmul=True)
        elif name in FLOAT_ELEMENTWISE and _is_float(eqn.outvars[0].aval):
            arith(_size(eqn.outvars[0].aval))
        elif name in REDUCTIONS and _is_float(eqn.invars[0].aval):
            arith(_size(eqn.invars[0].aval))
        else:  # pjit, custom_jvp/vjp, remat, ...: their inner programs, once
            for sub in core.jaxprs_in_params(eqn.params):
                add(count_flops(sub))
    return total


def compile_with_cost(fn, *args) -> tuple:
    """(compiled, compile seconds, cost) of a jitted fn: cost = count_flops + xla_flops."""
    t0 = time.perf_counter()
    traced = fn.trace(*args)
    compiled = traced.lower().compile()
    compile_s = time.perf_counter() - t0
    cost = count_flops(traced.jaxpr)
    cost["xla_flops"] = xla_flops(compiled)
    return compiled, compile_s, cost


def _orthogonal(n: int):
    """A random n x n orthogonal f32 matrix: repeated products keep their scale (no denormals)."""
    import numpy as np

    q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((n, n)))
    return q.astype(np.float32)


def matmul_flops_per_s(m: int, k: int, reps: int, calls: int) -> float:
    """Best-of-`calls` FLOP/s of a jitted program doing `reps` chained [m, k] @ [k, k] f32
    matmuls (x <- x @ w, w orthogonal)."""
    import jax
    import jax.numpy as jnp

    w = jnp.asarray(_orthogonal(k))
    x = jax.random.normal(jax.random.PRNGKey(0), (m, k), jnp.float32)
    if reps == 1:
        f = jax.jit(lambda x, w: x @ w)
    else:
        f = jax.jit(lambda x, w: jax.lax.fori_loop(0, reps, lambda _, y: y @ w, x))
    jax.block_until_ready(f(x, w))
    best = math.inf
    for _ in range(calls):
        t0 = time.perf_counter()
        jax.block_until_ready(f(x, w))
        best = min(best, time.perf_counter() - t0)
    return 2 * m * k * k * reps / best


def measure(scale: float = 1.0) -> dict:
    """This machine's matmul roofline: a learner-sized layer and a large square matmul."""
    import jax

    calls = max(int(5 * scale), 2)
    small = matmul_flops_per_s(SMALL_BATCH, 64, SMALL_REPS, calls)
    large = matmul_flops_per_s(LARGE_N, LARGE_N, 1, calls)
    return {
        "backend": jax.default_backend(),
        "device": str(jax.devices()[0].device_kind),
        "small": {"shape": [SMALL_BATCH, 64, 64], "reps": SMALL_REPS, "flops_per_s": small},
        "large": {"shape": [LARGE_N] * 3, "flops_per_s": large},
    }


def fractions(flops: float | None, run_s: float | None, roof: dict | None) -> dict:
    """Achieved FLOP/s of `flops` in `run_s`, and its fraction of each roofline size."""
    if not flops or not run_s or not roof or "error" in roof:
        return {}
    achieved = flops / run_s
    return {
        "flops_per_s": achieved,
        "roof_small": achieved / roof["small"]["flops_per_s"],
        "roof_large": achieved / roof["large"]["flops_per_s"],
    }


def format_roof(roof: dict) -> str:
    """One line naming the roofline figures the fractions are against."""
    if "error" in roof:
        return f"(matmul roofline: error {' '.join(roof['error'])})"
    s, g = roof["small"], roof["large"]
    return (
        f"(roofline on {roof['backend']} [{roof['device']}]: f32 matmul "
        f"{'x'.join(map(str, s['shape']))} x{s['reps']} in one program "
        f"{s['flops_per_s'] / 1e9:.1f} GFLOP/s, {'x'.join(map(str, g['shape']))} "
        f"{g['flops_per_s'] / 1e9:.1f} GFLOP/s; 'roof s/l' = achieved FLOP/s / each)"
    )


def best_of(*roofs: dict) -> dict:
    """Per size, the fastest of several roofline measurements (taken before and after a suite:
    the attainable rate is the least disturbed one); an error only if all are errors."""
    ok = [r for r in roofs if r and "error" not in r]
    if not ok:
        return roofs[0]
    out = dict(ok[0])
    for size in ("small", "large"):
        out[size] = max((r[size] for r in ok), key=lambda s: s["flops_per_s"])
    out["measurements"] = len(ok)
    return out
