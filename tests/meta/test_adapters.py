"""The README's three adapters run as written (against the stand-ins of tests/cells/third_party.py), pass
L0 (values and every gradient, the parameters' included: the mapping is differentiable), and an
adapter with a wrong mapping fails L0: the adapter is checked, not trusted. The helpers and the
protocol's errors are tested here too."""
import re
from pathlib import Path

import pytest
import torch

from lstm_claims.adapters import (AdapterError, StepAdapter, combined_bias, fused_kernel, reorder_gates,
                                  without_layer_dim)
from lstm_claims.claims.cell_under_test import CellContractError, CellUnderTest, check_contract
from lstm_claims.inprocess import first_violation

ROOT = Path(__file__).resolve().parents[2]
README_ADAPTERS = ("FusedGateAdapter", "TwoLinearAdapter", "TransposedKernelAdapter")


def readme_blocks() -> dict:
    """{adapter name: its README code block}, the user's package replaced by the stand-ins."""
    text = (ROOT / "README.md").read_text()
    blocks = dict(re.findall(r"<!-- adapter: (\w+) -->\n```python\n(.*?)```", text, flags=re.S))
    return {k: v.replace("from mypackage.cells import", "from tests.cells.third_party import") for k, v in blocks.items()}


@pytest.fixture(scope="module")
def readme_module(tmp_path_factory):
    """The README's adapters written into a module on sys.path (so --lstm-impl can name them)."""
    import sys

    folder = tmp_path_factory.mktemp("readme")
    (folder / "readme_adapters.py").write_text("\n\n".join(readme_blocks().values()))
    sys.path.insert(0, str(folder))
    yield "readme_adapters"
    sys.path.remove(str(folder))
    sys.modules.pop("readme_adapters", None)


def test_the_readme_shows_three_adapters():
    assert set(readme_blocks()) == set(README_ADAPTERS)


@pytest.mark.parametrize("name", README_ADAPTERS)
def test_readme_adapter_passes_L0(readme_module, name):
    spec = f"{readme_module}:{name}"
    checks = ("forward", "backward") + (("sequence-forward", "sequence-backward") if "Transposed" in name else ())
    assert first_violation(spec, "L0", checks=checks, max_examples=15) is None


def test_readme_sequence_adapter_runs_the_claims_over_sequences_through_its_module(readme_module):
    assert CellUnderTest.load(f"{readme_module}:TransposedKernelAdapter").kind == "sequence adapter"
    assert first_violation(f"{readme_module}:TransposedKernelAdapter", "L6", max_examples=3) is None


class WrongGateOrderAdapter(StepAdapter):
    """The README's first adapter without the gate reordering: the kit must reject it."""

    def build(self, input_size, hidden_size):
        from tests.cells.third_party import FusedGateCell
        return FusedGateCell(input_size, hidden_size)

    def parameters_for(self, weight_ih, weight_hh, bias_ih, bias_hh):
        return {"gates.weight": fused_kernel(weight_ih, weight_hh), "gates.bias": combined_bias(bias_ih, bias_hh)}

    def step(self, x, h, c):
        _, (h, c) = self.call(x, (h, c))
        return h, c


def test_an_adapter_with_a_wrong_mapping_fails_L0():
    exc = first_violation("tests.meta.test_adapters:WrongGateOrderAdapter", "L0", checks=("forward",), max_examples=15)
    assert exc is not None and exc.claim_id == "L0"


class MisnamedAdapter(WrongGateOrderAdapter):
    def parameters_for(self, weight_ih, weight_hh, bias_ih, bias_hh):
        return {"gate.weight": fused_kernel(weight_ih, weight_hh)}


class MisshapenAdapter(WrongGateOrderAdapter):
    def parameters_for(self, weight_ih, weight_hh, bias_ih, bias_hh):
        return {"gates.weight": weight_ih}


@pytest.mark.parametrize("name,message", [("MisnamedAdapter", "names 'gate.weight', which the module built by build() does not have"),
                                          ("MisshapenAdapter", "gives 'gates.weight' shape")])
def test_an_adapter_that_breaks_the_protocol_gets_one_message(name, message):
    with pytest.raises(CellContractError, match=re.escape(message)):
        check_contract(CellUnderTest.load(f"tests.meta.test_adapters:{name}"), "cpu", torch.float64)


def test_reorder_gates_moves_blocks_and_rejects_bad_orders():
    t = torch.arange(8.0)  # blocks i=[0,1], f=[2,3], g=[4,5], o=[6,7]
    assert reorder_gates(t, "igfo").tolist() == [0, 1, 4, 5, 2, 3, 6, 7]
    assert reorder_gates(t, "ifgo").tolist() == t.tolist()
    with pytest.raises(AdapterError, match="permutation"):
        reorder_gates(t, "iffo")
    with pytest.raises(AdapterError, match="multiple of 4"):
        reorder_gates(torch.arange(6.0), "ifgo")


def test_without_layer_dim_names_what_is_wrong():
    assert without_layer_dim(torch.zeros(1, 2, 3)).shape == (2, 3)
    with pytest.raises(AdapterError, match=r"hy must have shape \(1, batch, hidden_size\), got \(2, 3\)"):
        without_layer_dim(torch.zeros(2, 3), what="hy")
