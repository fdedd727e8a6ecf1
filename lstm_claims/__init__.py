"""lstm-claims: executable checks of the gradient-flow claims of LSTMs (see README.md).

Installed, the kit is one package: lstm_claims with its subpackages claims, strategies,
reference and benchmarks. In the repository those live at the top level (the design card's
layout); when this package is imported from a checkout that was not installed, its import
path is extended to the checkout's root so that lstm_claims.claims etc. resolve there too.
"""
from pathlib import Path as _Path

__version__ = "0.2.0"

_HERE = _Path(__file__).resolve().parent
if not (_HERE / "claims").is_dir() and (_HERE.parent / "claims" / "registry.py").is_file():
    __path__.append(str(_HERE.parent))  # noqa: F821 (a package's __path__)
