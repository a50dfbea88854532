"""A "Staleness" tab and chart in Locust's web UI, through its documented extension points.

- ``web_ui.template_args["extended_tabs"]`` / ``["extended_tables"]`` add a tab whose
  table Locust refreshes with every ``/stats/requests`` poll (about every 2 s); an
  ``after_request`` hook on that route adds the rows as ``extended_stats``: per scenario,
  reads, stale reads, the running stale share, time-to-usable p50/p95/p99, users done,
  affected users, support contacts and the faults in force.
- ``/staleness`` (a route on ``web_ui.app``) is a page with two charts drawn from
  ``/staleness/data``: the stale share of reads over the run (cumulative, and of the reads
  since the previous point) and the time-to-usable quantiles; ``/staleness/csv`` is the
  same history as CSV. The tab's "Download Data" list links both.

The numbers are those of :class:`~repaychaos.integrations.live_metrics.LiveStaleness`
(the Prometheus exporter's tallies), so the tab and ``/metrics`` never disagree.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from repaychaos.integrations.live_metrics import LiveStaleness

__all__ = ["install", "TAB_KEY", "COLUMNS"]

TAB_KEY = "staleness"

#: The tab's columns: (row key, title).
COLUMNS: tuple[tuple[str, str], ...] = (
    ("scenario", "Scenario"), ("source", "Source"), ("acked", "Acked"), ("reads", "Reads"),
    ("stale_reads", "Stale reads"), ("stale_share", "Stale share"), ("ttu_p50", "Time to usable p50"),
    ("ttu_p95", "p95"), ("ttu_p99", "p99"), ("users_done", "Users done"), ("affected_users", "Affected users"),
    ("support_contacts", "Support contacts"), ("faults_in_force", "Faults in force"),
)


def install(web_ui: Any, live: LiveStaleness) -> None:
    """Add the tab, the chart page and the CSV to a Locust ``WebUI``."""
    from flask import Response, request

    args = web_ui.template_args
    args["extended_tabs"] = [*args.get("extended_tabs", []), {"title": "Staleness", "key": TAB_KEY}]
    args["extended_tables"] = [*args.get("extended_tables", []),
                               {"key": TAB_KEY, "structure": [{"key": k, "title": t} for k, t in COLUMNS]}]
    args["extended_csv_files"] = [*args.get("extended_csv_files", []),
                                  {"href": "./staleness", "title": "Staleness chart (stale share, time to usable)"},
                                  {"href": "./staleness/csv", "title": "Download staleness history CSV"}]
    app = web_ui.app

    @app.after_request
    def _add_staleness_rows(response: Any) -> Any:
        if not request.path.endswith("/stats/requests") or response.status_code != 200:
            return response
        live.sample()
        body = response.get_json(silent=True)
        if not isinstance(body, dict):
            return response
        extended = [s for s in body.get("extended_stats", []) if s.get("key") != TAB_KEY]
        body["extended_stats"] = [*extended, {"key": TAB_KEY, "data": live.summary()}]
        response.set_data(json.dumps(body))
        return response

    @app.route("/staleness")
    def staleness_page() -> Any:
        return Response(_PAGE, mimetype="text/html")

    @app.route("/staleness/data")
    def staleness_data() -> Any:
        history = live.sample()
        payload = {"source": live.source, "summary": live.summary(), "history": history,
                   "windows": live.windows}
        return Response(json.dumps(payload), mimetype="application/json")

    @app.route("/staleness/csv")
    def staleness_csv() -> Any:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["scenario_seconds", "wall_seconds", "scenario", "reads", "stale_reads", "stale_share",
                         "recent_stale_share", "ttu_p50_s", "ttu_p95_s", "ttu_p99_s"])
        for point in live.sample():
            for name, s in point["scenarios"].items():
                writer.writerow([point["t"], point["wall"], name, s["reads"], s["stale"], s["share"],
                                 s["recent_share"], s["p50"], s["p95"], s["p99"]])
        return Response(out.getvalue(), mimetype="text/csv",
                        headers={"Content-Disposition": "attachment; filename=staleness_history.csv"})


# A page with no outside assets (the web UI may run with no network): two SVG charts
# redrawn from /staleness/data every two seconds.
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>repaychaos: staleness while the run goes on</title>
<style>
body{font-family:system-ui,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:20px;margin:0 0 4px} p.sub{margin:0 0 16px;color:#555}
.cards{display:flex;gap:12px;margin-bottom:16px;flex-wrap:wrap}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:10px 14px;min-width:130px}
.card b{display:block;font-size:22px} .card span{color:#666;font-size:12px}
.chart{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px;margin-bottom:16px}
.chart h2{font-size:14px;margin:4px 8px} svg{width:100%;height:260px}
.legend span{margin-right:14px;font-size:12px} .legend i{display:inline-block;width:18px;height:3px;
vertical-align:middle;margin-right:4px}
</style></head><body>
<h1>Staleness while the run goes on</h1>
<p class="sub" id="sub">waiting for the first reads&hellip;</p>
<div class="cards" id="cards"></div>
<div class="chart"><h2>Stale share of reads (%) &mdash; shaded: the scenario's fault windows; x: the run's scenario seconds</h2>
<div class="legend"><span><i style="background:#c62828"></i>cumulative</span>
<span><i style="background:#ef9a9a"></i>reads since the previous point</span></div>
<svg id="share" viewBox="0 0 1000 260" preserveAspectRatio="none"></svg></div>
<div class="chart"><h2>Time to usable (scenario seconds), over the users done so far</h2>
<div class="legend"><span><i style="background:#1565c0"></i>p50</span><span><i style="background:#6a1b9a"></i>p95</span>
<span><i style="background:#2e7d32"></i>p99</span></div>
<svg id="ttu" viewBox="0 0 1000 260" preserveAspectRatio="none"></svg></div>
<script>
const W=1000,H=260,L=60,B=24;
function esc(s){return String(s).replace(/[&<>"]/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]))}
function draw(svg,xs,series,ymaxMin,ymaxCap,fmt,windows){
  const xmin=Math.min(...xs),xmax=Math.max(xmin+1,...xs);let ymax=ymaxMin;
  for(const s of series)for(const v of s.v)if(v!=null&&v>ymax)ymax=v;
  ymax=Math.min(ymax*1.1,ymaxCap);const X=x=>L+(W-L-10)*(x-xmin)/(xmax-xmin),Y=y=>H-B-(H-B-10)*y/ymax;let out='';
  for(const w of windows||[]){const a=X(Math.max(xmin,Math.min(w.start,xmax))),b=X(Math.max(xmin,Math.min(w.end==null?xmax:w.end,xmax)));
    if(b>a)out+=`<rect x="${a}" y="10" width="${b-a}" height="${H-B-10}" fill="#ffe0b2" opacity="0.6"><title>${esc(w.fault)}</title></rect>`}
  for(let i=0;i<=4;i++){const y=ymax*i/4;out+=`<line x1="${L}" x2="${W-10}" y1="${Y(y)}" y2="${Y(y)}" stroke="#eee"/>`+
    `<text x="${L-6}" y="${Y(y)+4}" font-size="11" text-anchor="end" fill="#666">${fmt(y)}</text>`}
  for(let i=0;i<=5;i++){const x=xmin+(xmax-xmin)*i/5;out+=`<text x="${X(x)}" y="${H-6}" font-size="11" text-anchor="middle" fill="#666">${Math.round(x)} s</text>`}
  for(const s of series){let d='';xs.forEach((x,i)=>{const v=s.v[i];if(v==null)return;d+=(d?'L':'M')+X(x).toFixed(1)+','+Y(v).toFixed(1)});
    if(d)out+=`<path d="${d}" fill="none" stroke="${s.c}" stroke-width="2"/>`}
  svg.innerHTML=out}
async function tick(){
  try{const r=await fetch('./staleness/data');const d=await r.json();const h=d.history;
    const rows=d.summary;document.getElementById('cards').innerHTML=rows.map(s=>
      `<div class="card"><span>${esc(s.scenario)} (${esc(s.source)})</span><b>${esc(s.stale_share)}</b><span>stale share of ${s.reads} reads</span></div>`+
      `<div class="card"><span>time to usable p50 / p99</span><b>${esc(s.ttu_p50)}</b><span>p99 ${esc(s.ttu_p99)}</span></div>`+
      `<div class="card"><span>affected users</span><b>${s.affected_users}</b><span>of ${s.users_done} done; support contacts ${s.support_contacts}</span></div>`+
      `<div class="card"><span>faults in force</span><b style="font-size:15px">${esc(s.faults_in_force)}</b></div>`).join('');
    if(h.length){const name=Object.keys(h[h.length-1].scenarios)[0];if(name){
      const xs=h.map(p=>p.t),g=k=>h.map(p=>{const s=p.scenarios[name];return s&&s[k]!=null?s[k]:null});
      document.getElementById('sub').textContent=`scenario ${name}, at scenario second ${Math.round(h[h.length-1].t)}`;
      draw(document.getElementById('share'),xs,[{v:g('recent_share').map(v=>v==null?null:100*v),c:'#ef9a9a'},
        {v:g('share').map(v=>v==null?null:100*v),c:'#c62828'}],1,100,v=>v.toFixed(1)+' %',d.windows);
      draw(document.getElementById('ttu'),xs,[{v:g('p50'),c:'#1565c0'},{v:g('p95'),c:'#6a1b9a'},{v:g('p99'),c:'#2e7d32'}],1,Infinity,
        v=>v>=100?Math.round(v):v.toFixed(1),d.windows)}}}catch(e){document.getElementById('sub').textContent='no data: '+e}
}
tick();setInterval(tick,2000);
</script></body></html>
"""
