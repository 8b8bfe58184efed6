"""The shared pytrees are built with keywords only: swapped bool fields cannot pass silently."""

import jax.numpy as jnp
import pytest

from rl_aux.types import Rollout, Transition


def test_transition_refuses_positional_fields_and_keeps_keywords():
    with pytest.raises(TypeError):
        Transition(1, 2, 3, jnp.array(True), jnp.array(False), 6)  # terminated/truncated order
    t = Transition(obs=1, action=2, reward=3, terminated=True, truncated=False, next_obs=6)
    assert (t.terminated, t.truncated) == (True, False) and t.extras == {}


def test_rollout_refuses_positional_fields():
    tr = Transition(obs=1, action=2, reward=3, terminated=True, truncated=False, next_obs=6)
    with pytest.raises(TypeError):
        Rollout(tr, 1, 2, 3, 4, 5)
