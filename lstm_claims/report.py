"""The report: DIR/index.html, one self-contained page built from DIR/claims.json and DIR/bench.json.

The first screen tells the story: how many claims hold, hold under a condition, are refuted,
failed or did not run (`summary_counts`); one sentence per refuted claim from the
counterexample claims.json records for it, and per failed claim from its first failure
(`claim_sentences`); then the central picture: every figure whose key marks it central
(claims/plots.py `is_central`, L9's ||dc_t/dc_0|| against t per dtype). Below: the verdict
table and one section per claim.

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

import re

from lstm_claims.claims.plots import finite_positive, is_central, is_plot_spec, series_values, series_x
from lstm_claims.results import VERDICTS

COLOURS = {"holds": "#1a7f37", "holds-under-condition": "#2f6f9f", "refuted": "#b35900", "failed": "#c62828",
           "not-run": "#777777"}


def _draw(ax, spec: dict, ylim=None) -> None:
    """One plot spec on one axis: each series as a line, over its shaded band when it has one."""
    logy = spec.get("logy")
    for s in spec["series"]:
        x = series_x(s)
        y = finite_positive(series_values(s)) if logy else series_values(s)
        (line,) = ax.plot(x, y, s.get("style", "-o"), label=s["label"], markersize=3, linewidth=1.2)
        if "lower" in s:
            lo, hi = (finite_positive(series_values(s, k)) if logy else series_values(s, k) for k in ("lower", "upper"))
            ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_title(spec["title"], fontsize=10)
    ax.set_xlabel(spec["xlabel"])
    ax.set_ylabel(spec["ylabel"])
    if spec.get("logx"):
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.grid(True, which="both", alpha=0.3)


def _png(spec: dict) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if spec.get("kind") == "panels":
        plots, zoom = spec["panels"], spec.get("zoom")
        rows = 2 if zoom else 1
        fig, axes = plt.subplots(rows, len(plots), figsize=(3.9 * len(plots), 2.3 * rows + 0.8), dpi=100,
                                 sharey="row", sharex="col", squeeze=False)
        for row in range(rows):
            for col, p in enumerate(plots):
                _draw(axes[row][col], p, ylim=zoom if row == 1 else None)
                if col:
                    axes[row][col].set_ylabel("")
                if row + 1 < rows:
                    axes[row][col].set_xlabel("")
                if row:
                    axes[row][col].set_title("")
        # One legend for all panels, under the title: the first screen must show it without scrolling.
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.suptitle(spec["title"], fontsize=11, y=0.995)
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.955), ncol=min(len(labels), 6),
                   fontsize=8, frameon=False)
        fig.tight_layout(rect=(0, 0, 1, 0.9))
    else:
        fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
        _draw(ax, spec)
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


def _figure(v: dict) -> str:
    note = f"<p class=note>{html.escape(v.get('note', ''))}</p>" if v.get("note") else ""
    return (f"<figure><img alt='{html.escape(v['title'])}' src='data:image/png;base64,{_png(v)}'/>"
            f"<figcaption>{html.escape(v['title'])}</figcaption>{note}</figure>")


def _figures(figures: dict, *, central_at_top: bool = False) -> str:
    """A claim's figures; with central_at_top, the central ones (drawn on the first screen) become a link."""
    if central_at_top and any(is_central(k) for k in figures):
        figures = {k: v for k, v in figures.items() if not is_central(k)}
        figures["central picture"] = "drawn at the top of the page (#summary)"
    scalars = {k: v for k, v in figures.items() if not isinstance(v, (dict, list))}
    parts = []
    if scalars:
        parts.append(_table([{"figure": k, "value": v} for k, v in scalars.items()]))
    for k, v in figures.items():
        if is_plot_spec(v):
            parts.append(_figure(v))
        elif isinstance(v, list):
            parts.append(f"<h4>{html.escape(k)}</h4>" + _table(v))
        elif isinstance(v, dict) and isinstance(v.get("rows"), dict):
            parts.append(f"<h4>{html.escape(k)}</h4>" + _rows_table(v))
        elif isinstance(v, dict):
            parts.append(f"<h4>{html.escape(k)}</h4><pre>{html.escape(json.dumps(v, indent=1, default=str)[:6000])}</pre>")
    return "".join(parts)


def _verdict(v: str) -> str:
    return f"<span class=verdict style='background:{COLOURS.get(v, '#777')}'>{html.escape(v)}</span>"


# --- the first screen ------------------------------------------------------------------------

SUMMARY_WORDS = {"holds": "hold", "holds-under-condition": "hold under a condition", "refuted": "refuted",
                 "failed": "failed", "not-run": "not run"}
# Chosen: a sentence longer than this is cut (with an ellipsis); the whole text is in the claim's section.
SENTENCE_CHARS = 320


def summary_counts(data: dict) -> dict:
    """{verdict: number of claims} for every verdict of the rule (lstm_claims/results.py), zeros included."""
    counts = dict.fromkeys(VERDICTS, 0)
    for cid, c in data["claims"].items():
        if c.get("verdict") not in counts:
            raise ValueError(f"claims.json: claim {cid} has verdict {c.get('verdict')!r}, not one of {VERDICTS}")
        counts[c["verdict"]] += 1
    return counts


def _first_sentence(text: str) -> str:
    text = re.sub(r"^\[[A-Z]\d\]\s*", "", " ".join(str(text).split()))  # a ClaimViolation's "[G2] " prefix
    m = re.search(r"(?<=\.)\s", text)  # the first ". " ends the sentence (a number's "1.5" never does)
    text = text[:m.start()] if m else text
    return text if len(text) <= SENTENCE_CHARS else text[:SENTENCE_CHARS - 1].rstrip() + "…"


def _counterexample_text(ce) -> str:
    if isinstance(ce, dict):
        for key in ("reading", "message"):
            if isinstance(ce.get(key), str) and ce[key].strip():
                return ce[key]
        scalars = [f"{k} = {_fmt(v)}" for k, v in ce.items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)]
        return ", ".join(scalars) if scalars else json.dumps(ce, default=str)
    return str(ce)


def claim_sentences(data: dict) -> list[dict]:
    """One sentence per refuted claim (its recorded counterexample) and per failed claim (its first failure).

    claims.json keeps one counterexample per claim: the first found, the one its reproduce
    command replays (lstm_claims/results.py); its `reading` (or the check's message) is the sentence.
    """
    out = []
    for cid, c in data["claims"].items():
        if c.get("verdict") == "refuted":
            text = _counterexample_text(c.get("counterexample"))
        elif c.get("verdict") == "failed":
            fails = c.get("failures") or []
            text = (f"{fails[0][0]}: {fails[0][1]}" if fails else "a check that must hold did not (see its section)")
        else:
            continue
        out.append({"id": cid, "title": c.get("title", ""), "verdict": c["verdict"], "sentence": _first_sentence(text)})
    return out


def _summary_html(data: dict) -> str:
    counts, total = summary_counts(data), len(data["claims"])
    tally = " · ".join(f"{_verdict(v)} <b>{n}</b> {SUMMARY_WORDS[v]}" for v, n in counts.items())
    items = "".join(f"<li><a href='#{s['id']}'>{s['id']}</a> ({html.escape(s['title'])}) {_verdict(s['verdict'])}: "
                    f"{html.escape(s['sentence'])}</li>" for s in claim_sentences(data))
    central = "".join(
        (_figure(v) if is_plot_spec(v) else f"<h4>{html.escape(k)} ({cid})</h4>" + _table(v) if isinstance(v, list)
         else "")
        for cid, c in data["claims"].items() for k, v in (c.get("figures") or {}).items() if is_central(k))
    return (f"<section id='summary'><h2>Summary: {total} claims</h2><p class=tally>{tally}</p>"
            + (f"<ul class=sentences>{items}</ul>" if items else "") + central + "</section>")


def _claims_html(data: dict) -> str:
    claims = data["claims"]
    rows = "".join(
        f"<tr><td><a href='#{cid}'>{cid}</a></td><td>{html.escape(c.get('title', ''))}</td><td>{_verdict(c['verdict'])}</td>"
        f"<td>{c.get('examples', 0)}</td><td>{html.escape(c.get('condition', ''))}</td></tr>"
        for cid, c in claims.items())
    kind = f" ({html.escape(data['impl_kind'])})" if data.get("impl_kind") else ""
    head = (f"<p>Implementation under test <code>{html.escape(data['impl'])}</code>{kind}; kit {data['kit_version']}; torch "
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
            + (f"<h3>Figures</h3>{_figures(c['figures'], central_at_top=True)}" if c.get("figures") else "")
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
        out += ("<p>Smoke run (--benchmark-disable): every benchmark ran once, untimed"
                + (" (the implementation's benchmarks ran timed at tiny sizes: their ratios show that they run, "
                   "not how fast)" if bench.get("impl_table") else "") + ".</p>")
    out += _bench_impl_html(bench)
    defs = bench.get("ratio_definitions", {})
    rows = [{"ratio": k, "times faster": v, "meaning": defs.get(k, {}).get("meaning", "")}
            for k, v in bench.get("ratios", {}).items() if not k.startswith("impl_")]
    out += _table(rows) if rows else ""
    if bench.get("goals"):
        out += "<h3>Goals</h3>" + _table([{"benchmark": k, **{f: v for f, v in g.items() if not f.endswith("meaning")}}
                                          for k, g in bench["goals"].items()])
        out += "".join(f"<p class=note><b>{html.escape(k)}</b>: {html.escape(str(g[f]))}</p>"
                       for k, g in bench["goals"].items() for f in g if f.endswith("meaning"))
    if bench.get("jacobian_floor"):
        out += _jacobian_floor_html(bench["jacobian_floor"])
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
        for k in ("load_average_before", "load_average_after"):  # lists: shown, since they qualify every timing
            if isinstance(bench["machine_info"].get(k), list):
                info[k] = ", ".join(f"{x:.2f}" for x in bench["machine_info"][k])
        out += "<h3>Machine</h3>" + _table([{"": k, "value": v} for k, v in info.items()])
    return out + "</section>"


def _bench_impl_html(bench: dict) -> str:
    """The implementation under test (lstm-claims bench --lstm-impl): its three ratios, then the full table."""
    table = bench.get("impl_table")
    if not table:
        return ""
    defs = bench.get("ratio_definitions", {})
    ratios = [{"ratio": k, "times faster": v, "against": defs.get(k, {}).get("second", ""),
               "meaning": defs.get(k, {}).get("meaning", "")}
              for k, v in bench.get("ratios", {}).items() if k.startswith("impl_")]
    return (f"<h3>Your implementation: <code>{html.escape(str(bench.get('lstm_impl') or ''))}</code></h3>"
            + _table(ratios)
            + "<p class=note>Median seconds per call (forward: no grad, h_T; fwdbwd: h_T.sum().backward() with "
              "parameter gradients) and impl_vs_X = median(X) / median(implementation), how many times faster the "
              "implementation is. 'unsupported' gives the exception of the first call in that dtype.</p>"
            + _table(table))


def _jacobian_floor_html(floor: dict) -> str:
    """The closed-form Jacobian against what it cannot avoid (lstm_claims.bench.jacobian_floor)."""
    values = [{"quantity": k, "value": v} for k, v in floor.items() if not isinstance(v, dict)]
    meaning = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(str(v))}</li>"
                      for k, v in floor.get("meaning", {}).items())
    return ("<h3>The cell-state Jacobian against its floor</h3>" + _table(values)
            + (f"<ul class=note>{meaning}</ul>" if meaning else ""))


STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:0.5em 0;display:block;overflow-x:auto}td,th{border:1px solid #ccc;padding:3px 8px;font-size:0.9em;text-align:left}
.verdict{color:#fff;padding:1px 8px;border-radius:8px;font-size:0.85em;white-space:nowrap}pre{background:#f5f5f5;padding:0.5em;overflow-x:auto}
section{border-top:1px solid #ddd;margin-top:1.5em}figure{margin:0.5em 0}.note{font-size:0.85em;color:#555}
img{max-width:100%}.tally{font-size:1.05em}.sentences li{margin:0.2em 0;font-size:0.92em}"""


def render(out_dir: Path) -> Path:
    """Write out_dir/index.html from whatever of claims.json and bench.json is there."""
    out_dir = Path(out_dir)
    body = ["<h1>lstm-claims report: LSTM Cell-State Path Mitigates Vanishing Gradients</h1>"]
    claims_path, bench_path = out_dir / "claims.json", out_dir / "bench.json"
    if claims_path.exists():
        data = json.loads(claims_path.read_text(encoding="utf-8"))
        body.append(_summary_html(data))  # the first screen: counts, sentences, the central picture
        body.append(_claims_html(data))
        from lstm_claims.report_dtypes import dtypes_html  # the per-dtype verdicts (issue 12)
        body.append(dtypes_html(data))
    else:
        body.append("<p>No claims.json here: run <code>lstm-claims run</code>.</p>")
    if bench_path.exists():
        body.append(_bench_html(json.loads(bench_path.read_text(encoding="utf-8"))))
    page = out_dir / "index.html"
    page.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>lstm-claims report</title>"
                    f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>", encoding="utf-8")
    return page
