"""hdrkit: high dynamic range imaging in PyTorch."""

from hdrkit.errors import HdrkitError

__version__ = "0.1.0"
__all__ = ["HdrkitError", "__version__"]
