"""Result records in, things people and CI read out.

- :mod:`reports.render` — ``write_report(results, out_dir, comparison=None)``: report.html,
  summary.md, junit.xml and plots/*.png.
- :mod:`reports.compare` — ``compare_results(sim, load)``: model against measurement.
- :mod:`reports.plots`, :mod:`reports.html`, :mod:`reports.markdown`, :mod:`reports.junit`,
  :mod:`reports.fmt` — one output each; :mod:`reports.synthetic` — stand-in records for tests.

Nothing here runs a model or a load test: it only renders records (SPEC §5).
"""
