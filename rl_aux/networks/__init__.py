"""Torsos, recurrent cores and output heads, assembled into one `AgentNetwork`."""

from rl_aux.networks.network import AgentNetwork, NetworkConfig, make_network

__all__ = ["AgentNetwork", "NetworkConfig", "make_network"]
