"""neonas: hardware-aware neural architecture search over the NeoCell design space."""

__version__ = "0.1.0"
