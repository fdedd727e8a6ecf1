"""The cell under test: loading `MODULE:ATTR`, checking its contract, and running it.

The contract is torch.nn.LSTMCell's: `ATTR(input_size, hidden_size)` returns a module
with attributes weight_ih (4n x m), weight_hh (4n x n), bias_ih, bias_hh (4n), gate
order i, f, g, o, and `cell(x, (h, c)) -> (h_next, c_next)` for x (batch, m) and h, c
(batch, n). The suite writes the parameters it draws into those four tensors in place,
moves the module to the device and dtype under test, and differentiates through the
module's own forward with autograd.
"""
from __future__ import annotations

import importlib
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import torch

from lstm_claims.reference.lstm_step import LSTMParams

DEFAULT_IMPL = "lstm_claims.reference.reference_cell:ReferenceLSTMCell"
PARAM_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


class CellContractError(Exception):
    """The module under test does not follow torch.nn.LSTMCell's contract."""


def _shape(name, n, m):
    return {"weight_ih": (4 * n, m), "weight_hh": (4 * n, n), "bias_ih": (4 * n,), "bias_hh": (4 * n,)}[name]


def load_factory(spec: str) -> Callable:
    """Import `MODULE:ATTR` (e.g. `torch.nn:LSTMCell`); one CellContractError if that fails."""
    if not isinstance(spec, str) or spec.count(":") != 1 or not all(spec.split(":")):
        raise CellContractError(f"--lstm-impl must look like MODULE:ATTR (e.g. torch.nn:LSTMCell), got {spec!r}")
    module_name, attr = spec.split(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any import failure is the user's module, reported as such
        raise CellContractError(f"cannot import module {module_name!r} of --lstm-impl={spec}: "
                                f"{type(exc).__name__}: {exc}") from exc
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise CellContractError(f"{part!r} is not defined in module {module_name!r} (--lstm-impl={spec})")
        obj = getattr(obj, part)
    if not callable(obj):
        raise CellContractError(f"{spec} is a {type(obj).__name__}, not a callable returning a cell module")
    return obj


@dataclass
class CellUnderTest:
    """A loaded implementation, with one cached module per (m, n, device, dtype)."""

    spec: str
    factory: Callable
    _cache: dict = field(default_factory=dict, repr=False)
    # The last forward calls (shapes, dtype, device, grad mode): the context of an exception the
    # implementation raises (a kernel may fail only after other sizes were seen, e.g. TorchScript's
    # specialisation to the batch sizes of earlier calls).
    calls: deque = field(default_factory=lambda: deque(maxlen=8), repr=False)

    @classmethod
    def load(cls, spec: str) -> "CellUnderTest":
        return cls(spec, load_factory(spec))

    @property
    def version(self) -> str:
        mod = importlib.import_module(self.spec.split(":")[0].split(".")[0])
        return str(getattr(mod, "__version__", "unknown"))

    def module(self, input_size: int, hidden_size: int, device, dtype) -> torch.nn.Module:
        key = (input_size, hidden_size, str(device), dtype)
        if key not in self._cache:
            try:
                cell = self.factory(input_size, hidden_size)
            except Exception as exc:
                raise CellContractError(f"{self.spec}({input_size}, {hidden_size}) raised "
                                        f"{type(exc).__name__}: {exc}") from exc
            if not isinstance(cell, torch.nn.Module):
                raise CellContractError(f"{self.spec}({input_size}, {hidden_size}) returned a "
                                        f"{type(cell).__name__}, not a torch.nn.Module")
            cell = cell.to(device=device, dtype=dtype)
            _check_parameters(self.spec, cell, input_size, hidden_size, device, dtype)
            self._cache[key] = cell
        return self._cache[key]

    def with_params(self, params: LSTMParams, device, dtype) -> torch.nn.Module:
        """The module with `params` written into its four tensors (under no_grad)."""
        cell = self.module(params.input_size, params.hidden_size, device, dtype)
        with torch.no_grad():
            for name, value in params.as_dict().items():
                getattr(cell, name).copy_(value.to(device=device, dtype=dtype))
        cell.zero_grad(set_to_none=True)
        return cell

    def step(self, cell: torch.nn.Module, x, h, c):
        """cell(x, (h, c)) with the contract on its result checked."""
        self.calls.append(f"x {tuple(x.shape)}, h and c {tuple(h.shape)}, {str(x.dtype)[6:]} on {x.device.type}"
                          f"{'' if torch.is_grad_enabled() else ', no grad'}")
        out = cell(x, (h, c))
        _check_output(self.spec, out, x, h)
        return out


def _check_parameters(spec, cell, m, n, device, dtype):
    problems = []
    for name in PARAM_NAMES:
        t = getattr(cell, name, None)
        if t is None:
            problems.append(f"it has no attribute {name!r}")
        elif not isinstance(t, torch.Tensor):
            problems.append(f"{name} is a {type(t).__name__}, not a tensor")
        elif tuple(t.shape) != _shape(name, n, m):
            problems.append(f"{name} has shape {tuple(t.shape)}, expected {_shape(name, n, m)} "
                            f"for input_size={m}, hidden_size={n}")
        elif t.dtype != dtype or t.device.type != torch.device(device).type:
            problems.append(f"{name} is {t.dtype} on {t.device} after .to({device}, {dtype})")
        elif not t.requires_grad:
            problems.append(f"{name} does not require grad (the suite differentiates with respect to it)")
    if problems:
        raise CellContractError(f"{spec}: " + "; ".join(problems))


def _check_output(spec, out, x, h):
    if not isinstance(out, (tuple, list)) or len(out) != 2 or not all(isinstance(t, torch.Tensor) for t in out):
        raise CellContractError(f"{spec}: cell(x, (h, c)) must return a pair of tensors (h_next, c_next), "
                                f"got {type(out).__name__}" + (f" of length {len(out)}" if isinstance(out, (tuple, list)) else ""))
    for name, t in zip(("h_next", "c_next"), out):
        if tuple(t.shape) != tuple(h.shape):
            raise CellContractError(f"{spec}: {name} has shape {tuple(t.shape)}, expected (batch, hidden_size) = "
                                    f"{tuple(h.shape)}")
        if t.dtype != x.dtype:
            raise CellContractError(f"{spec}: {name} has dtype {t.dtype} for inputs of dtype {x.dtype}")


def check_contract(cut: CellUnderTest, device, dtype) -> None:
    """Exercise the contract once on a small problem; one CellContractError naming what is wrong."""
    m, n, batch = 3, 2, 2
    cell = cut.module(m, n, device, dtype)
    gen = torch.Generator().manual_seed(0)
    x, h, c = (torch.rand(batch, k, generator=gen, dtype=torch.float64).to(device=device, dtype=dtype) - 0.5
               for k in (m, n, n))
    x.requires_grad_(True)
    h.requires_grad_(True)
    c.requires_grad_(True)
    try:
        out = cell(x, (h, c))
    except Exception as exc:
        raise CellContractError(f"{cut.spec}: cell(x, (h, c)) raised {type(exc).__name__}: {exc} "
                                f"(x {tuple(x.shape)}, h and c {tuple(h.shape)}, {dtype}, {device})") from exc
    _check_output(cut.spec, out, x, h)
    if not all(torch.isfinite(t).all() for t in out):
        raise CellContractError(f"{cut.spec}: cell returned NaN or inf for finite inputs in (-0.5, 0.5)")
    if not any(t.requires_grad for t in out):
        raise CellContractError(f"{cut.spec}: neither h_next nor c_next is differentiable "
                                f"(no grad_fn although the inputs and parameters require grad)")
    try:
        sum(t.sum() for t in out if t.requires_grad).backward()
    except Exception as exc:
        raise CellContractError(f"{cut.spec}: backward through the cell raised {type(exc).__name__}: {exc}") from exc
    cell.zero_grad(set_to_none=True)
