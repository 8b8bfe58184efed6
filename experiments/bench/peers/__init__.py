"""Peer harnesses for the side-by-side benches: standalone scripts run with the peer's Python.

Each imports a peer checkout the user provides (the peer's code is not part of rl-aux) and
times the peer's own training function as the peer publishes it; see docs/performance.md.
"""
