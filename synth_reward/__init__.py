"""synth-reward: sentences in, vetted reward code and trained policies out."""

__version__ = "0.3.0"
