"""Recurrent cores that reset their carry at episode starts: LSTM and GRU."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


class RecurrentCore(nn.Module):
    """One step of an LSTM/GRU over features z [B, D]; `reset` [B] zeroes the carry first."""

    kind: str = "lstm"
    hidden: int = 128

    def setup(self):
        if self.kind == "lstm":
            self.cell = nn.OptimizedLSTMCell(self.hidden)
        elif self.kind == "gru":
            self.cell = nn.GRUCell(self.hidden)
        else:
            raise ValueError(f"core.kind={self.kind!r}; accepted: lstm, gru")

    def __call__(self, z, carry, reset):
        carry = jax.tree.map(lambda c: jnp.where(reset[:, None], jnp.zeros_like(c), c), carry)
        carry, h = self.cell(carry, z)
        return h, carry

    def initial_carry(self, batch: int):
        return initial_carry(self.kind, self.hidden, batch)


def initial_carry(kind: str, hidden: int, batch: int):
    """Zero carry of the right pytree structure for `kind` (LSTM: (c, h); GRU: h)."""
    z = jnp.zeros((batch, hidden), jnp.float32)
    return (z, z) if kind == "lstm" else z


def lstm_scan(cell_params: dict, z, carry, first):
    """RecurrentCore('lstm') over z [T, B, D] with resets `first` [T, B] -> (h [T, B, H],
    carries after each step). Same params and outputs as stepping the core T times, but the
    input projection runs once on all T x B rows and the gate kernels are fused outside the
    loop, so each scan step (and its transpose) has fewer, larger ops, which shortens PPO's
    update on MiniHack-Room (docs/results/nethack.md). Relies on flax OptimizedLSTMCell's
    param names and sigmoid/tanh gates (test_networks.py::test_unroll_equals_stepping)."""
    gates = "ifgo"  # flax OptimizedLSTMCell: kernels i{g} (input), h{g} (recurrent, biased)
    w_i = jnp.concatenate([cell_params[f"i{g}"]["kernel"] for g in gates], -1)
    w_h = jnp.concatenate([cell_params[f"h{g}"]["kernel"] for g in gates], -1)
    b_h = jnp.concatenate([cell_params[f"h{g}"]["bias"] for g in gates], -1)
    t, b, d = z.shape
    x_proj = (z.reshape(t * b, d) @ w_i).reshape(t, b, -1)

    def step(c_h, x):
        xp, f = x
        c, h = jax.tree.map(lambda v: jnp.where(f[:, None], jnp.zeros_like(v), v), c_h)
        i, f_gate, g, o = jnp.split((h @ w_h + b_h) + xp, 4, axis=-1)
        new_c = jax.nn.sigmoid(f_gate) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        new_h = jax.nn.sigmoid(o) * jnp.tanh(new_c)
        return (new_c, new_h), (new_h, (new_c, new_h))

    _, (h, carries) = jax.lax.scan(step, carry, (x_proj, first))
    return h, carries
