"""The exact greedy-path evaluation of the Fang & Stachenfeld gridworld transfer experiment."""

import numpy as np

from envs.fs_grid import SIZE
from experiments.fs_grid_transfer import greedy_paths, path_metrics

UP, DOWN, LEFT, RIGHT = range(4)  # envs.fs_grid.MOVES order


def _toward(goal):
    """A Q table whose greedy action moves vertically first, then horizontally, to `goal`."""
    q = np.zeros((SIZE * SIZE, 4))
    for c in range(SIZE * SIZE):
        r, col = divmod(c, SIZE)
        a = DOWN if r < goal[0] else UP if r > goal[0] else RIGHT if col < goal[1] else LEFT
        q[c, a] = 1.0
    return q


def test_shortest_policy_is_optimal_and_always_up_arrives_only_from_below():
    goal = (6, 5)
    always_up = np.eye(4)[np.full(SIZE * SIZE, UP)]
    m = path_metrics(np.stack([_toward(goal), always_up]), goal, 150)
    # always up: only the cell right below the goal, (7, 5), gets there (in its 1 shortest step)
    np.testing.assert_allclose(m["success"], [1.0, 1 / 63])
    np.testing.assert_allclose(m["optimality"], [1.0, 1 / 63])
    np.testing.assert_allclose(m["steps_to_goal"][1], (62 * 150 + 1) / 63)


def test_greedy_paths_counts_steps_from_every_start():
    goal = (0, 0)
    steps = greedy_paths(_toward(goal), goal, 150)
    cells = np.arange(1, SIZE * SIZE)  # every non-goal cell, in order
    np.testing.assert_array_equal(steps, cells // SIZE + cells % SIZE)
