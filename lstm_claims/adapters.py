"""Adapters: pointing the kit at an LSTM whose layout is not torch.nn.LSTMCell's.

The kit speaks one language: four tensors in torch's layout and gate order (weight_ih
(4n x m), weight_hh (4n x n), bias_ih, bias_hh (4n), gate blocks i, f, g, o) and a step
`(x, (h, c)) -> (h_next, c_next)` on (B, m) and (B, n) tensors, or, for a module that
takes the whole sequence, `(xs (T, B, m), (h0, c0)) -> (hs (T, B, n), (h_T, c_T))`.

An adapter is a small subclass of `StepAdapter` (the user's module computes one step) or
`SequenceAdapter` (it takes the whole sequence) that says three things:

    build(input_size, hidden_size)          -> the user's module, freshly constructed
    parameters_for(w_ih, w_hh, b_ih, b_hh)  -> {name of a parameter of that module: its value},
                                               computed from the kit's four tensors
    step(x, h, c) / sequence(xs, h0, c0)    -> call the module with self.call(...) and return
                                               the kit's layout

`self.call(*args)` runs the user's module with `torch.func.functional_call`, its
parameters replaced by `parameters_for(...)` of the kit's four tensors. The replacement is
differentiable, so the kit's gradients with respect to weight_ih, ..., bias_hh flow through
the user's own forward and backward (transposes, gate reorderings and fused kernels included),
and every parameter-gradient check still applies. Parameters of the user's module that
`parameters_for` does not name keep their values (a module with extra parameters is
checked with them as they are).

Helpers for the usual conventions: `reorder_gates` (another gate order), `transposed`
(kernels stored m x 4n), `combined_bias` (one bias), `fused_kernel` (one Linear over
[x, h]), `with_layer_dim` / `without_layer_dim` (states of shape (1, B, n)).

`TorchLSTM` is the built-in adapter for torch.nn.LSTM's contract (`ATTR(input_size,
hidden_size, batch_first=...)`, parameters weight_ih_l0 ..., `forward(x, (h0, c0)) ->
(output, (h_n, c_n))` with x (T, B, m) or (B, T, m) and states (1, B, n)): the kit wraps a
module it finds with those attributes in it, and runs both layouts.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch.func import functional_call

GATE_ORDER = "ifgo"  # the kit's (and torch's) order of the four gate blocks
KINDS = ("step", "sequence")


class AdapterError(Exception):
    """An adapter that does not do what the protocol says (the message names what is wrong)."""


# --- helpers for the usual conventions ---------------------------------------------------------

def reorder_gates(t: torch.Tensor, order: str, *, dim: int = 0) -> torch.Tensor:
    """`t` with its four gate blocks (along `dim`) moved from torch's order i, f, g, o to `order`.

    order: a permutation of "ifgo", e.g. "igfo" or "ifog" (Keras and TensorFlow use "ifco",
    written here "ifgo"; some fused kernels use "iofg"). Differentiable (a cat of views).
    """
    if sorted(order) != sorted(GATE_ORDER) or len(order) != 4:
        raise AdapterError(f"gate order must be a permutation of {GATE_ORDER!r}, got {order!r}")
    if t.shape[dim] % 4:
        raise AdapterError(f"a gate-stacked tensor has a multiple of 4 rows along dim {dim}, got shape {tuple(t.shape)}")
    blocks = dict(zip(GATE_ORDER, t.chunk(4, dim=dim)))
    return torch.cat([blocks[g] for g in order], dim=dim)


def transposed(w: torch.Tensor) -> torch.Tensor:
    """A kernel stored (in, 4n) instead of torch's (4n, in)."""
    return w.t()


def combined_bias(bias_ih: torch.Tensor, bias_hh: torch.Tensor) -> torch.Tensor:
    """One bias for a module that has a single bias per gate row (b = b_ih + b_hh)."""
    return bias_ih + bias_hh


def fused_kernel(weight_ih: torch.Tensor, weight_hh: torch.Tensor) -> torch.Tensor:
    """One (4n, m + n) kernel for a module that applies a single Linear to the concatenation [x, h]."""
    return torch.cat([weight_ih, weight_hh], dim=1)


def with_layer_dim(t: torch.Tensor) -> torch.Tensor:
    """A (B, n) state as (1, B, n), torch.nn.LSTM's (num_layers, B, n) with one layer."""
    return t.unsqueeze(0)


def without_layer_dim(t: torch.Tensor, *, what: str = "state") -> torch.Tensor:
    """A (1, B, n) state as (B, n); anything else is an AdapterError naming `what`."""
    if t.dim() != 3 or t.shape[0] != 1:
        raise AdapterError(f"{what} must have shape (1, batch, hidden_size), got {tuple(t.shape)}")
    return t[0]


# --- the protocol ------------------------------------------------------------------------------

class LSTMAdapter(torch.nn.Module):
    """The kit's four tensors, the user's module, and the mapping between them (see the module docstring).

    To the kit an adapter is an LSTMCell: it has weight_ih, weight_hh, bias_ih, bias_hh and
    a step forward(x, (h, c)). A SequenceAdapter also has forward_sequence, which the kit
    calls for every claim over sequences.
    """

    kind = "step"

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        if not (isinstance(input_size, int) and isinstance(hidden_size, int) and input_size > 0 and hidden_size > 0):
            raise AdapterError(f"input_size and hidden_size must be positive ints, got {input_size!r}, {hidden_size!r}")
        self.input_size, self.hidden_size = input_size, hidden_size
        n, m = hidden_size, input_size
        # torch.nn.LSTMCell's initialisation (uniform in ±1/√n); the kit overwrites the values it checks.
        k = 1 / math.sqrt(n)
        self.weight_ih = torch.nn.Parameter(torch.empty(4 * n, m).uniform_(-k, k))
        self.weight_hh = torch.nn.Parameter(torch.empty(4 * n, n).uniform_(-k, k))
        self.bias_ih = torch.nn.Parameter(torch.empty(4 * n).uniform_(-k, k))
        self.bias_hh = torch.nn.Parameter(torch.empty(4 * n).uniform_(-k, k))
        module = self.build(input_size, hidden_size)
        if not isinstance(module, torch.nn.Module):
            raise AdapterError(f"{type(self).__name__}.build({m}, {n}) returned a {type(module).__name__}, "
                               f"not a torch.nn.Module")
        self.module = module  # a submodule: .to(device, dtype) moves and converts it with the kit's tensors
        self._check_mapping()

    # -- what a user writes --
    def build(self, input_size: int, hidden_size: int) -> torch.nn.Module:
        raise NotImplementedError(f"{type(self).__name__} must define build(input_size, hidden_size)")

    def parameters_for(self, weight_ih, weight_hh, bias_ih, bias_hh) -> dict:
        raise NotImplementedError(f"{type(self).__name__} must define parameters_for(weight_ih, weight_hh, "
                                  f"bias_ih, bias_hh) -> {{parameter name: tensor}}")

    # -- what the adapter's methods call --
    def mapped_parameters(self) -> dict:
        return self.parameters_for(self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)

    def call(self, *args, **kwargs):
        """The user's module called on args, with its parameters replaced by the kit's (differentiably)."""
        return functional_call(self.module, self.mapped_parameters(), args, kwargs)

    def _check_mapping(self) -> None:
        mapped = self.mapped_parameters()
        if not isinstance(mapped, dict) or not mapped:
            raise AdapterError(f"{type(self).__name__}.parameters_for must return a non-empty dict "
                               f"{{parameter name: tensor}}, got {type(mapped).__name__}")
        own = dict(self.module.named_parameters())
        own.update(dict(self.module.named_buffers()))
        for name, value in mapped.items():
            if name not in own:
                raise AdapterError(f"{type(self).__name__}.parameters_for names {name!r}, which the module built by "
                                   f"build() does not have (it has: {', '.join(sorted(own)) or 'no parameters'})")
            if tuple(value.shape) != tuple(own[name].shape):
                raise AdapterError(f"{type(self).__name__}.parameters_for gives {name!r} shape {tuple(value.shape)}, "
                                   f"but the module's {name} has shape {tuple(own[name].shape)}")

    def extra_repr(self) -> str:
        return f"kind={self.kind}, input_size={self.input_size}, hidden_size={self.hidden_size}"


class StepAdapter(LSTMAdapter):
    """For a module that computes one step. Define build, parameters_for and step(x, h, c) -> (h_next, c_next)."""

    kind = "step"

    def step(self, x, h, c):
        raise NotImplementedError(f"{type(self).__name__} must define step(x, h, c) -> (h_next, c_next)")

    def forward(self, x, state):
        h, c = state
        return self.step(x, h, c)


class SequenceAdapter(LSTMAdapter):
    """For a module that takes the whole sequence. Define build, parameters_for and
    sequence(xs, h0, c0) -> (hs, (h_T, c_T)) with xs (T, B, m), h0, c0 and h_T, c_T (B, n), hs (T, B, n).

    `layouts` names the input layouts the module is run in ("time_first": xs as (T, B, m),
    "batch_first": (B, T, m)); `sequence` receives `layout=` when there is more than one.
    """

    kind = "sequence"
    layouts = ("time_first",)

    def sequence(self, xs, h0, c0, *, layout: str = "time_first"):
        raise NotImplementedError(f"{type(self).__name__} must define sequence(xs, h0, c0) -> (hs, (h_T, c_T))")

    def forward_sequence(self, xs, state, *, layout: str = "time_first"):
        if layout not in self.layouts:
            raise AdapterError(f"{type(self).__name__} runs layouts {self.layouts}, not {layout!r}")
        h0, c0 = state
        if len(self.layouts) == 1:
            return self.sequence(xs, h0, c0)
        return self.sequence(xs, h0, c0, layout=layout)

    def forward(self, x, state):
        """One step: the sequence forward over a sequence of length 1."""
        hs, (h, c) = self.forward_sequence(x.unsqueeze(0), state, layout=self.layouts[0])
        return h, c


# --- torch.nn.LSTM's contract, built in ------------------------------------------------------

UNSUPPORTED_LSTM_OPTIONS = {  # attribute: (the value the kit checks, what the option means)
    "num_layers": (1, "stacked layers"),
    "bidirectional": (False, "a reverse-direction layer"),
    "proj_size": (0, "projected hidden states (LSTMP)"),
    "bias": (True, "no biases (the kit writes bias_ih and bias_hh)"),
}
TORCH_LSTM_NAMES = {"weight_ih": "weight_ih_l0", "weight_hh": "weight_hh_l0", "bias_ih": "bias_ih_l0",
                    "bias_hh": "bias_hh_l0"}


def looks_like_torch_lstm(module) -> bool:
    return isinstance(module, torch.nn.Module) and all(hasattr(module, name) for name in TORCH_LSTM_NAMES.values())


def unsupported_lstm_options(module) -> list[str]:
    """The torch.nn.LSTM options of `module` the kit cannot check yet, each as 'name=value (meaning)'."""
    out = []
    for name, (ok, meaning) in UNSUPPORTED_LSTM_OPTIONS.items():
        value = getattr(module, name, ok)
        if value != ok:
            out.append(f"{name}={value!r} ({meaning})")
    return out


def _lstm_output(spec, out, *, T, B, n, batch_first):
    """(output (T, B, n) time-first, h_n (B, n), c_n (B, n)) from torch.nn.LSTM's return value, contract checked."""
    if not (isinstance(out, (tuple, list)) and len(out) == 2 and isinstance(out[0], torch.Tensor)
            and isinstance(out[1], (tuple, list)) and len(out[1]) == 2
            and all(isinstance(t, torch.Tensor) for t in out[1])):
        got = type(out).__name__ + (f" of length {len(out)}" if isinstance(out, (tuple, list)) else "")
        raise AdapterError(f"{spec}: forward(x, (h0, c0)) must return (output, (h_n, c_n)) like torch.nn.LSTM, got {got}")
    output, (h_n, c_n) = out
    want = (B, T, n) if batch_first else (T, B, n)
    if tuple(output.shape) != want:
        raise AdapterError(f"{spec}: output has shape {tuple(output.shape)}, expected "
                           f"{'(batch, T, hidden_size)' if batch_first else '(T, batch, hidden_size)'} = {want}")
    for name, t in (("h_n", h_n), ("c_n", c_n)):
        if tuple(t.shape) != (1, B, n):
            raise AdapterError(f"{spec}: {name} has shape {tuple(t.shape)}, expected (num_layers=1, batch, "
                               f"hidden_size) = {(1, B, n)} (the layer dimension is part of torch.nn.LSTM's contract)")
    return (output.transpose(0, 1) if batch_first else output), h_n[0], c_n[0]


class TorchLSTM(SequenceAdapter):
    """torch.nn.LSTM's contract: `factory(input_size, hidden_size, batch_first=...)`, run in both layouts.

    Two modules are built, batch_first=False and True, and both receive the kit's four
    tensors as weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0.
    """

    layouts = ("time_first", "batch_first")

    def __init__(self, factory: Callable, input_size: int, hidden_size: int, *, spec: str = "torch.nn.LSTM"):
        self.factory, self.spec = factory, spec
        super().__init__(input_size, hidden_size)
        self.batch_first_module = self._make(True)

    def _make(self, batch_first: bool) -> torch.nn.Module:
        module = self.factory(self.input_size, self.hidden_size, batch_first=batch_first)
        if not looks_like_torch_lstm(module):
            raise AdapterError(f"{self.spec}({self.input_size}, {self.hidden_size}, batch_first={batch_first}) has no "
                               f"{', '.join(TORCH_LSTM_NAMES.values())}")
        bad = unsupported_lstm_options(module)
        if bad:
            raise AdapterError(f"{self.spec}: the kit cannot check {', '.join(bad)} yet; it checks one layer, one "
                               f"direction, with biases and without projection (num_layers=1, bidirectional=False, "
                               f"proj_size=0, bias=True)")
        if getattr(module, "batch_first", batch_first) != batch_first:
            raise AdapterError(f"{self.spec} ignores batch_first={batch_first} (its batch_first is {module.batch_first})")
        return module

    def build(self, input_size, hidden_size):
        return self._make(False)

    def parameters_for(self, weight_ih, weight_hh, bias_ih, bias_hh):
        return {TORCH_LSTM_NAMES[k]: v for k, v in
                zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), (weight_ih, weight_hh, bias_ih, bias_hh))}

    def sequence(self, xs, h0, c0, *, layout="time_first"):
        T, B, _ = xs.shape
        batch_first = layout == "batch_first"
        module = self.batch_first_module if batch_first else self.module
        x = xs.transpose(0, 1).contiguous() if batch_first else xs  # a real batch-first tensor, contiguous
        # States of torch.nn.LSTM's contract are (1, B, n) tensors of their own: cuDNN refuses a strided
        # one ("rnn: hx is not contiguous", torch 2.11, H200), and a strided (B, n) view of the kit's
        # layout check has no counterpart in that contract.
        state = (with_layer_dim(h0).contiguous(), with_layer_dim(c0).contiguous())
        out = functional_call(module, self.mapped_parameters(), (x, state))
        hs, h_n, c_n = _lstm_output(self.spec, out, T=T, B=B, n=self.hidden_size, batch_first=batch_first)
        return hs, (h_n, c_n)
