"""The implementation under test: loading `MODULE:ATTR`, telling its kind, checking its contract, running it.

Three kinds, told apart by what `ATTR(input_size, hidden_size)` returns:

- a **cell** (torch.nn.LSTMCell's contract): a module with weight_ih (4n x m), weight_hh
  (4n x n), bias_ih, bias_hh (4n), gate order i, f, g, o, and `cell(x, (h, c)) ->
  (h_next, c_next)` for x (batch, m) and h, c (batch, n);
- a **sequence module** (torch.nn.LSTM's contract): weight_ih_l0, weight_hh_l0,
  bias_ih_l0, bias_hh_l0, `forward(x, (h0, c0)) -> (output, (h_n, c_n))`, x (T, B, m) or
  with batch_first=True (B, T, m), states (1, B, n); the kit wraps it in
  lstm_claims.adapters.TorchLSTM and runs both layouts;
- an **adapter** (a subclass of lstm_claims.adapters.StepAdapter or SequenceAdapter): the
  user's mapping of the kit's four tensors onto any other layout.

To the rest of the kit every kind is a module with the four tensors weight_ih, ...,
bias_hh and a one-step forward; a sequence module also has forward_sequence, which the
claims over sequences call (`CellUnderTest.sequence`) instead of a step loop of the kit's.
The suite writes the parameters it draws into those four tensors in place, moves the
module to the device and dtype under test, and differentiates through the module's own
forward with autograd.
"""
from __future__ import annotations

import importlib
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import torch

from lstm_claims import names

from lstm_claims.adapters import AdapterError, LSTMAdapter, TorchLSTM, looks_like_torch_lstm
from lstm_claims.reference.lstm_step import LSTMParams

DEFAULT_IMPL = names.DEFAULT_IMPL
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

    def _build(self, input_size: int, hidden_size: int) -> torch.nn.Module:
        """The factory's module as the kit runs it: a cell as it is, a sequence module or an adapter wrapped."""
        call = f"{self.spec}({input_size}, {hidden_size})"
        try:
            made = self.factory(input_size, hidden_size)
            if looks_like_torch_lstm(made) and not isinstance(made, LSTMAdapter) and not hasattr(made, "weight_ih"):
                made = TorchLSTM(self.factory, input_size, hidden_size, spec=self.spec)
        except AdapterError as exc:
            raise CellContractError(str(exc)) from exc
        except Exception as exc:
            raise CellContractError(f"{call} raised {type(exc).__name__}: {exc}") from exc
        if not isinstance(made, torch.nn.Module):
            raise CellContractError(f"{call} returned a {type(made).__name__}, not a torch.nn.Module")
        if not isinstance(made, LSTMAdapter) and not any(hasattr(made, p) for p in PARAM_NAMES):
            raise CellContractError(
                f"{call} is a {type(made).__name__} with neither torch.nn.LSTMCell's parameters ({', '.join(PARAM_NAMES)}) "
                f"nor torch.nn.LSTM's (weight_ih_l0, ...): point --lstm-impl at an adapter "
                f"(lstm_claims.adapters.StepAdapter or SequenceAdapter, README 'Adapters') that maps the kit's "
                f"four tensors onto its parameters")
        return made

    @property
    def kind(self) -> str:
        """'cell', 'sequence' (torch.nn.LSTM's contract), 'step adapter' or 'sequence adapter'."""
        made = next(iter(self._cache.values()), None) or self._build(3, 2)
        if isinstance(made, TorchLSTM):
            return "sequence"
        if isinstance(made, LSTMAdapter):
            return f"{made.kind} adapter"
        return "cell"

    @property
    def runs_sequences(self) -> bool:
        """Whether the module's own forward runs whole sequences (is_sequence_module of what the kit built),
        without writing parameters into it."""
        return self.kind in ("sequence", "sequence adapter")

    def describe(self) -> str:
        """One line for the report header: what the kit found behind the spec."""
        return {"cell": "a cell (torch.nn.LSTMCell's contract: one step per call; the kit runs the time loop)",
                "sequence": "a sequence module (torch.nn.LSTM's contract: whole sequences through its own forward, "
                            "time-first and batch-first)",
                "step adapter": "an adapter of a one-step module (lstm_claims.adapters.StepAdapter)",
                "sequence adapter": "an adapter of a sequence module (lstm_claims.adapters.SequenceAdapter: whole "
                                    "sequences through its own forward)"}[self.kind]

    def module(self, input_size: int, hidden_size: int, device, dtype) -> torch.nn.Module:
        key = (input_size, hidden_size, str(device), dtype)
        if key not in self._cache:
            cell = self._build(input_size, hidden_size).to(device=device, dtype=dtype)
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

    def sequence(self, cell: torch.nn.Module, xs, h0, c0, *, layout: str = "time_first"):
        """(hs (T, B, n), (h_T, c_T)) over xs (T, B, m) from (h0, c0): the module's own forward over the
        whole sequence for a sequence module (in `layout`), the cell stepped T times otherwise."""
        if not is_sequence_module(cell):
            h, c, hs = h0, c0, []
            for x in xs:
                h, c = self.step(cell, x, h, c)
                hs.append(h)
            return torch.stack(hs), (h, c)
        self.calls.append(f"sequence xs {tuple(xs.shape)} ({layout}), h0 and c0 {tuple(h0.shape)}, "
                          f"{str(xs.dtype)[6:]} on {xs.device.type}{'' if torch.is_grad_enabled() else ', no grad'}")
        try:
            out = cell.forward_sequence(xs, (h0, c0), layout=layout)
        except AdapterError as exc:
            raise CellContractError(str(exc)) from exc
        _check_sequence_output(self.spec, out, xs, h0)
        return out


def is_sequence_module(cell) -> bool:
    """A module whose own forward runs whole sequences (the claims over sequences go through it)."""
    return isinstance(cell, LSTMAdapter) and cell.kind == "sequence"


def layouts_of(cell) -> tuple:
    return tuple(getattr(cell, "layouts", ("time_first",))) if is_sequence_module(cell) else ("time_first",)


def _check_sequence_output(spec, out, xs, h0):
    T, B = xs.shape[:2]
    n = h0.shape[-1]
    if not (isinstance(out, (tuple, list)) and len(out) == 2 and isinstance(out[0], torch.Tensor)
            and isinstance(out[1], (tuple, list)) and len(out[1]) == 2):
        raise CellContractError(f"{spec}: the sequence forward must give (hs, (h_T, c_T)), got {type(out).__name__}")
    hs, (h, c) = out
    if tuple(hs.shape) != (T, B, n):
        raise CellContractError(f"{spec}: the per-step outputs have shape {tuple(hs.shape)}, expected (T, batch, "
                                f"hidden_size) = {(T, B, n)}")
    _check_output(spec, (h, c), xs[0], h0)
    if hs.dtype != xs.dtype:
        raise CellContractError(f"{spec}: the per-step outputs have dtype {hs.dtype} for inputs of dtype {xs.dtype}")


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


def _autocast_output(t, x) -> bool:
    """Under torch.autocast an output in the autocast dtype is the contract (CUDA's LSTMCell returns bfloat16)."""
    kind = x.device.type
    return torch.is_autocast_enabled(kind) and t.dtype == torch.get_autocast_dtype(kind)


def _check_output(spec, out, x, h):
    if not isinstance(out, (tuple, list)) or len(out) != 2 or not all(isinstance(t, torch.Tensor) for t in out):
        raise CellContractError(f"{spec}: cell(x, (h, c)) must return a pair of tensors (h_next, c_next), "
                                f"got {type(out).__name__}" + (f" of length {len(out)}" if isinstance(out, (tuple, list)) else ""))
    for name, t in zip(("h_next", "c_next"), out):
        if tuple(t.shape) != tuple(h.shape):
            raise CellContractError(f"{spec}: {name} has shape {tuple(t.shape)}, expected (batch, hidden_size) = "
                                    f"{tuple(h.shape)}")
        if t.dtype != x.dtype and not _autocast_output(t, x):
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
    for layout in layouts_of(cell) if is_sequence_module(cell) else ():
        xs = torch.rand(3, batch, m, generator=gen, dtype=torch.float64).to(device=device, dtype=dtype) - 0.5
        try:
            cut.sequence(cell, xs, h.detach(), c.detach(), layout=layout)
        except CellContractError:
            raise
        except Exception as exc:
            raise CellContractError(f"{cut.spec}: the sequence forward ({layout}) raised {type(exc).__name__}: {exc} "
                                    f"(xs {tuple(xs.shape)}, h0 and c0 {tuple(h.shape)}, {dtype}, {device})") from exc
