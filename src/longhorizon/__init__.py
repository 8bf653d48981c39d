"""longhorizon: long-horizon agent models by scaling trajectories, not parameters."""

__version__ = "0.1.0"
