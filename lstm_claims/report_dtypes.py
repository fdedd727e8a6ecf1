"""The report's per-dtype verdicts: one table, claims by dtype (float64, float32, bfloat16, float16).

Reads claims.json's "dtypes" (lstm_claims/results.py: dtype_verdicts) and "dtypes_why_not"
(the checks that stay in float64/float32 and why). Hooked into lstm_claims/report.py's render.
"""
from __future__ import annotations

import html

from lstm_claims.results import DTYPE_NAMES

COLOURS = {"holds": "#2e7d32", "holds-under-condition": "#558b2f", "refuted": "#ef6c00", "failed": "#c62828",
           "not-run": "#757575", "not-checked": "#9e9e9e"}


def _cell(verdict: str) -> str:
    return (f"<td><span class=verdict style='background:{COLOURS.get(verdict, '#777')}'>"
            f"{html.escape(verdict)}</span></td>")


def dtypes_html(data: dict) -> str:
    """The per-dtype verdict table of a claims.json payload ('' when it has no per-dtype verdicts)."""
    claims = data.get("claims", {})
    if not any(c.get("dtypes") for c in claims.values()):
        return ""
    head = "".join(f"<th>{d}</th>" for d in DTYPE_NAMES)
    rows, notes = [], []
    for cid, c in claims.items():
        dts = c.get("dtypes") or {}
        rows.append(f"<tr><td><a href='#{html.escape(cid)}'>{html.escape(cid)}</a></td>"
                    + "".join(_cell(dts.get(d, "not-run")) for d in DTYPE_NAMES) + "</tr>")
        for check, why in (c.get("dtypes_why_not") or {}).items():
            notes.append(f"<li><b>{html.escape(cid)}</b> <code>{html.escape(check)}</code>: {html.escape(why)}</li>")
    why = f"<p>Checks that stay in float64/float32, and why:</p><ul>{''.join(notes)}</ul>" if notes else ""
    return ("<section id='dtypes'><h2>Verdicts per dtype</h2>"
            "<p>Each claim's checks that run the implementation under test, per dtype, against the float64 "
            "reference (bfloat16 and float16: the module converted to the dtype, inputs exact in it, tolerances "
            "from its unit roundoff with float32 accumulation). <i>not-checked</i>: no check of the claim runs "
            f"in that dtype.</p><table><tr><th>ID</th>{head}</tr>{''.join(rows)}</table>{why}</section>")
