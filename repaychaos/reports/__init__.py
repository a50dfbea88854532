"""Result records in, things people and CI read out.

- :mod:`repaychaos.reports.render` — ``write_report(results, out_dir, comparison=None)``: report.html,
  summary.md, junit.xml and plots/*.png.
- :mod:`repaychaos.reports.compare` — ``compare_results(sim, load)``: model against measurement.
- :mod:`repaychaos.reports.plots`, :mod:`repaychaos.reports.html`, :mod:`repaychaos.reports.markdown`, :mod:`repaychaos.reports.junit`,
  :mod:`repaychaos.reports.fmt` — one output each. (Stand-in records for tests are built by `tests/synthetic.py`.)

Nothing here runs a model or a load test: it only renders records (docs/reference/result-file.md).
"""
