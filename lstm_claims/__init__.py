"""lstm-claims: executable checks of the gradient-flow claims of LSTMs (see README.md)."""
__version__ = "0.1.0"
