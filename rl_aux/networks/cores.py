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
