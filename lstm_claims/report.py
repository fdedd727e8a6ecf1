"""The report: DIR/index.html, one self-contained page built from DIR/claims.json and DIR/bench.json.

Generic over claims: every claim in claims.json gets a row in the verdict table and a
section; its figures are shown as a table of numbers, tables (lists of rows) as HTML
tables, and plot specifications (claims/plots.py) as embedded PNG plots. A claim added
later appears without any change here.
"""
from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

from lstm_claims.claims.plots import finite_positive, is_plot_spec

COLOURS = {"holds": "#1a7f37", "holds-under-condition": "#2f6f9f", "refuted": "#b35900", "failed": "#c62828",
           "not-run": "#777777"}


def _png(spec: dict) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    for s in spec["series"]:
        y = finite_positive(s["y"]) if spec.get("logy") else s["y"]
        ax.plot(s["x"], y, s.get("style", "-o"), label=s["label"], markersize=3)
    ax.set_title(spec["title"])
    ax.set_xlabel(spec["xlabel"])
    ax.set_ylabel(spec["ylabel"])
    if spec.get("logx"):
        ax.set_xscale("log")
    if spec.get("logy"):
        ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return html.escape(str(v))


def _table(rows: list) -> str:
    if not rows:
        return "<p>(empty)</p>"
    if not isinstance(rows[0], dict):
        return "<pre>" + html.escape(json.dumps(rows, indent=1)[:4000]) + "</pre>"
    cols = list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(r.get(c, ''))}</td>" for c in cols) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + " / "))
        else:
            out[key] = v
    return out


def _rows_table(value: dict) -> str:
    """A {"meta": {...}, "rows": {label: {...nested...}}} figure as the meta list and one flat row per label."""
    meta = "".join(f"<li><b>{html.escape(str(k))}</b>: {html.escape(str(v))}</li>" for k, v in value.get("meta", {}).items())
    rows = [{"": label, **_flatten(row)} for label, row in value["rows"].items()]
    return (f"<ul class=note>{meta}</ul>" if meta else "") + _table(rows)


def _figures(figures: dict) -> str:
    scalars = {k: v for k, v in figures.items() if not isinstance(v, (dict, list))}
    parts = []
    if scalars:
        parts.append(_table([{"figure": k, "value": v} for k, v in scalars.items()]))
    for k, v in figures.items():
        if is_plot_spec(v):
            note = f"<p class=note>{html.escape(v.get('note', ''))}</p>" if v.get("note") else ""
            parts.append(f"<figure><img alt='{html.escape(v['title'])}' src='data:image/png;base64,{_png(v)}'/>"
                         f"<figcaption>{html.escape(v['title'])}</figcaption>{note}</figure>")
        elif isinstance(v, list):
            parts.append(f"<h4>{html.escape(k)}</h4>" + _table(v))
        elif isinstance(v, dict) and isinstance(v.get("rows"), dict):
            parts.append(f"<h4>{html.escape(k)}</h4>" + _rows_table(v))
        elif isinstance(v, dict):
            parts.append(f"<h4>{html.escape(k)}</h4><pre>{html.escape(json.dumps(v, indent=1, default=str)[:6000])}</pre>")
    return "".join(parts)


def _verdict(v: str) -> str:
    return f"<span class=verdict style='background:{COLOURS.get(v, '#777')}'>{html.escape(v)}</span>"


def _claims_html(data: dict) -> str:
    claims = data["claims"]
    rows = "".join(
        f"<tr><td><a href='#{cid}'>{cid}</a></td><td>{html.escape(c.get('title', ''))}</td><td>{_verdict(c['verdict'])}</td>"
        f"<td>{c.get('examples', 0)}</td><td>{html.escape(c.get('condition', ''))}</td></tr>"
        for cid, c in claims.items())
    head = (f"<p>Cell under test <code>{html.escape(data['impl'])}</code>; kit {data['kit_version']}; torch "
            f"{html.escape(data['torch_version'])}; devices {', '.join(data['devices'])}; profile "
            f"{html.escape(data['profile'])}; seed {html.escape(str(data['seed']))}.</p>")
    table = ("<table><tr><th>ID</th><th>claim</th><th>verdict</th><th>examples</th><th>condition</th></tr>"
             f"{rows}</table>")
    sections = []
    for cid, c in claims.items():
        ce = c.get("counterexample")
        fails = "".join(f"<li><code>{html.escape(n)}</code>: {html.escape(m)}</li>" for n, m in c.get("failures", []))
        sections.append(
            f"<section id='{cid}'><h2>{cid} — {html.escape(c.get('title', ''))} {_verdict(c['verdict'])}</h2>"
            f"<p><b>Statement.</b> {html.escape(c.get('statement', ''))}</p>"
            f"<p><b>Condition.</b> {html.escape(c.get('condition', ''))}</p>"
            f"<p><b>Computed.</b> {html.escape(c.get('quantity', ''))}</p>"
            f"<p>Checks passed {c.get('passed', 0)}, failed {c.get('failed', 0)}, expected failures "
            f"{c.get('xfailed', 0)}, skipped {c.get('skipped', 0)}; examples {c.get('examples', 0)}.</p>"
            + (f"<h3>Failures</h3><ul>{fails}</ul>" if fails else "")
            + (f"<h3>Figures</h3>{_figures(c['figures'])}" if c.get("figures") else "")
            + (f"<h3>Counterexample</h3><pre>{html.escape(json.dumps(ce, indent=1, default=str)[:8000])}</pre>"
               if ce is not None else "")
            + f"<h3>Reproduce</h3><pre>{html.escape(c.get('reproduce', ''))}</pre></section>")
    return head + table + "".join(sections)


def _scan_plot(benchmarks: dict) -> dict | None:
    """Loop against scan median time over T, per width (the G4 benchmark), as a plot spec."""
    from lstm_claims.claims.plots import plot_spec, series

    lines = {}
    for key, b in benchmarks.items():
        info = b.get("extra_info", {})
        if key.startswith("scan/") and "T" in info and "width" in info:
            impl = key.split("/")[1]
            lines.setdefault((impl, info["width"], info.get("device", "cpu")), []).append((info["T"], b["median_s"]))
    if not lines:
        return None
    return plot_spec("G4: the sequential loop against the blocked scan, c_t = a_t c_(t-1) + b_t", "T",
                     "median time (s)", [series(f"{impl}, width {w}, {dev}", *zip(*sorted(pts)))
                                         for (impl, w, dev), pts in sorted(lines.items())], logx=True, logy=True)


def _bench_html(bench: dict) -> str:
    out = "<section id='bench'><h2>Benchmarks of the recurrence core</h2>"
    if bench.get("smoke"):
        out += "<p>Smoke run (--benchmark-disable): every benchmark ran once, untimed.</p>"
    defs = bench.get("ratio_definitions", {})
    rows = [{"ratio": k, "times faster": v, "meaning": defs.get(k, {}).get("meaning", "")}
            for k, v in bench.get("ratios", {}).items()]
    out += _table(rows) if rows else ""
    if bench.get("goals"):
        out += "<h3>Goals</h3>" + _table([{"benchmark": k, **v} for k, v in bench["goals"].items()])
    if bench.get("crossover"):
        out += "<h3>Scan crossover</h3>" + _table([_flatten(bench["crossover"])])
    benches = bench.get("benchmarks", {})
    if isinstance(benches, dict) and benches:
        out += "<h3>All benchmarks</h3>" + _table(
            [{"benchmark": k, **{f: b.get(f) for f in ("median_s", "iqr_s", "stddev_s", "rounds")}}
             for k, b in benches.items()])
        plot = _scan_plot(benches)
        out += _figures({"plot_scan": plot}) if plot else ""
    if bench.get("machine_info"):
        info = {k: v for k, v in bench["machine_info"].items() if not isinstance(v, (dict, list))}
        out += "<h3>Machine</h3>" + _table([{"": k, "value": v} for k, v in info.items()])
    return out + "</section>"


STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:0.5em 0;display:block;overflow-x:auto}td,th{border:1px solid #ccc;padding:3px 8px;font-size:0.9em;text-align:left}
.verdict{color:#fff;padding:1px 8px;border-radius:8px;font-size:0.85em;white-space:nowrap}pre{background:#f5f5f5;padding:0.5em;overflow-x:auto}
section{border-top:1px solid #ddd;margin-top:1.5em}figure{margin:0.5em 0}.note{font-size:0.85em;color:#555}"""


def render(out_dir: Path) -> Path:
    """Write out_dir/index.html from whatever of claims.json and bench.json is there."""
    out_dir = Path(out_dir)
    body = ["<h1>lstm-claims report: LSTM Cell-State Path Mitigates Vanishing Gradients</h1>"]
    claims_path, bench_path = out_dir / "claims.json", out_dir / "bench.json"
    if claims_path.exists():
        body.append(_claims_html(json.loads(claims_path.read_text(encoding="utf-8"))))
        from lstm_claims.report_dtypes import dtypes_html  # the per-dtype verdicts (issue 12)
        body.append(dtypes_html(json.loads(claims_path.read_text(encoding="utf-8"))))
    else:
        body.append("<p>No claims.json here: run <code>lstm-claims run</code>.</p>")
    if bench_path.exists():
        body.append(_bench_html(json.loads(bench_path.read_text(encoding="utf-8"))))
    page = out_dir / "index.html"
    page.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>lstm-claims report</title>"
                    f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>", encoding="utf-8")
    return page
