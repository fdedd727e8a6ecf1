"""The report's first screen (lstm_claims/report.py): counts, one sentence per refuted or failed claim,
the central picture, all computed from claims.json and placed before the verdict table."""
import json

import pytest

from lstm_claims.claims.plots import panels, plot_spec, series
from lstm_claims.claims.registry import CLAIM_IDS
from lstm_claims.report import claim_sentences, render, summary_counts


def _claims(**overrides):
    claims = {cid: {"id": cid, "title": f"claim {cid}", "statement": "s", "condition": "c", "verdict": "holds",
                    "examples": 1, "figures": {}, "counterexample": None, "failures": [], "reproduce": "cmd"}
              for cid in CLAIM_IDS}
    for cid, fields in overrides.items():
        claims[cid].update(fields)
    return {"kit_version": "0", "impl": "x:Y", "torch_version": "t", "devices": ["cpu"], "profile": "ci",
            "seed": 0, "claims": claims}


SYNTHETIC = _claims(
    L3={"verdict": "holds-under-condition"},
    L5={"verdict": "holds-under-condition"},
    L6={"verdict": "refuted", "counterexample": {"reading": "T = 3: the product is off by 3e-08. More detail here.",
                                                  "T": 3}},
    G2={"verdict": "refuted", "counterexample": {"message": "[G2] cpu float64: the norm is inf. The rest.",
                                                  "case": "norm overflow"}},
    V3={"verdict": "refuted", "counterexample": {"n": 1024, "rate": 0.458, "matrix": [[1, 2]]}},
    L1={"verdict": "failed", "failures": [["test_L1[x]", "[L1] the gate is wrong by 0.1"]]},  # as plugin.py writes
    G4={"verdict": "not-run"},
)


def test_counts_are_computed_from_claims_json():
    assert summary_counts(SYNTHETIC) == {"holds": len(CLAIM_IDS) - 7, "holds-under-condition": 2, "refuted": 3,
                                         "failed": 1, "not-run": 1}


def test_one_sentence_per_refuted_and_failed_claim_from_its_counterexample_or_failure():
    got = {s["id"]: (s["verdict"], s["sentence"]) for s in claim_sentences(SYNTHETIC)}
    assert got == {
        "L1": ("failed", "test_L1[x]: [L1] the gate is wrong by 0.1"),
        "L6": ("refuted", "T = 3: the product is off by 3e-08."),  # the reading's first sentence
        "G2": ("refuted", "cpu float64: the norm is inf."),  # the check's message, its [G2] prefix dropped
        "V3": ("refuted", "n = 1024, rate = 0.458"),  # no reading: its scalar fields
    }


def test_an_unknown_verdict_is_one_clear_error():
    with pytest.raises(ValueError, match="claim L0 has verdict 'fine'"):
        summary_counts(_claims(L0={"verdict": "fine"}))


def test_the_page_shows_the_summary_and_the_central_picture_before_the_verdict_table(tmp_path):
    band = series("LSTM, b_f = 1", range(1, 1001), [-0.1 * t for t in range(1, 1001)],
                  lower=[-0.1 * t - 1 for t in range(1, 1001)], upper=[-0.1 * t + 1 for t in range(1, 1001)], digits=4)
    data = _claims(**{k: v for k, v in SYNTHETIC["claims"].items() if v["verdict"] != "holds"})
    data["claims"]["L9"]["figures"] = {
        "plot_central_norm_vs_t": panels("central", [plot_spec(f"forward in {d}", "t", "log10", [band])
                                                     for d in ("float32", "bfloat16")], zoom=(-3, 3)),
        "central_medians_log10": [{"": "b_f = 1", "float32 t=10": -1.0}],
        "plot_other": plot_spec("other", "T", "n", [series("a", [1, 2], [1.0, 2.0])]),
    }
    (tmp_path / "claims.json").write_text(json.dumps(data, indent=2))
    page = render(tmp_path).read_text()
    summary, table = page.index("id='summary'"), page.index("<th>verdict</th>")
    assert summary < table
    first_screen = page[summary:table]
    for text in ("3</b> refuted", "1</b> failed", "1</b> not run", "2</b> hold under a condition",
                 "T = 3: the product is off by 3e-08.", "cpu float64: the norm is inf.", "float32 t=10"):
        assert text in first_screen, text
    assert "More detail here" not in first_screen
    assert first_screen.count("data:image/png;base64,") == 1  # the central picture, drawn once, at the top
    assert page.count("data:image/png;base64,") == 2  # plus L9's other plot in its section
    assert "drawn at the top of the page" in page[page.index("id='L9'"):]
