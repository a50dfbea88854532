"""write_report: one self-contained HTML page, a CI-ready Markdown summary and JUnit XML."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest

from repaychaos.core.errors import InvalidResult
from repaychaos.reports.markdown import INCONCLUSIVE_RULE
from repaychaos.reports.render import write_report
from synthetic import synthetic_result
from builders import make_scenario

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

def scenario(ratio_rule: str):
    return make_scenario(
        {"pipeline.credit": {"service": "20ms", "risk_hold_ratio": 0.01}, "pipeline.reconcile": {"every": "15m"}},
        name="report-tiny", seed=5, faults=[{"type": "maintenance", "component": "sync", "at": "5m", "for": "5m"}],
        slo={"stale_read_ratio": ratio_rule, "time_to_usable.p99": "< 10m", "lost_repayments": "== 0",
             "support_contacts_per_10k": "< 1"})


@pytest.fixture(scope="module")
def inconclusive_result():
    """A sim result whose stale_read_ratio SLO threshold sits at the observed value (CI straddles it)."""
    probe = synthetic_result(scenario("< 100%"))
    observed = probe["metrics"]["stale_read_ratio"]["value"]
    return synthetic_result(scenario(f"< {100 * observed:.6f}%"))


@pytest.fixture(scope="module")
def report(tmp_path_factory, inconclusive_result):
    """The report of a sim and a load result of the same scenario."""
    load = synthetic_result(scenario("< 100%"), source="load", seed=11)
    out = tmp_path_factory.mktemp("report")
    return write_report([inconclusive_result, load], out), [inconclusive_result, load]


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.links: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        for key in ("href", "src"):
            if key in attrs and tag != "img":
                self.links.append(attrs[key])

    def handle_data(self, data):
        self.text.append(data)


def test_write_report_returns_existing_paths(report):
    """Every returned path exists, including the three documents and comparison.json."""
    paths, _ = report
    for key in ("html", "markdown", "junit", "comparison"):
        assert paths[key].is_file(), key
    assert all(p.is_file() for k, p in paths.items() if k.startswith("plot:"))


def test_html_embeds_every_plot_as_png(report):
    """The page parses and each image is an inline data: URI that decodes to a PNG (no network)."""
    paths, _ = report
    page = _Page()
    page.feed(paths["html"].read_text(encoding="utf-8"))
    page.close()
    # 5 plots per result for two results, plus model-vs-measurement
    assert len(page.images) == 11
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG_SIGNATURE)
    assert not [link for link in page.links if "://" in link]


def test_html_puts_verdict_before_slos_before_plots_before_scenario(report):
    """The reader sees the verdict first, then the SLO table, then the plots, then the scenario."""
    text = report[0]["html"].read_text(encoding="utf-8")
    banner = text.index('class="banner fail"')  # support_contacts_per_10k < 1 fails
    slos = text.index("<h2>SLOs</h2>")
    first_plot = text.index("<img")
    scenario_section = text.index("<h2>Scenario")
    assert banner < slos < first_plot < scenario_section


def test_markdown_has_slo_table_with_one_row_per_slo(report):
    """summary.md has the SLO table header and one row per SLO of each result."""
    paths, results = report
    text = paths["markdown"].read_text(encoding="utf-8")
    assert "| result | SLO | rule | observed | 95% CI | verdict | gate |" in text
    rows = [line for line in text.splitlines() if line.startswith("| report-tiny (") and "`" in line]
    assert len(rows) == sum(len(r["slo"]) for r in results) == 8


def test_markdown_states_the_inconclusive_rule(report):
    """An inconclusive SLO is marked as such and the rule explaining it is printed."""
    text = report[0]["markdown"].read_text(encoding="utf-8")
    assert INCONCLUSIVE_RULE in text
    assert "| `stale_read_ratio` | `<" in text and "INCONCLUSIVE | **fails** |" in text


def test_markdown_without_inconclusive_omits_the_rule(tmp_path):
    """The inconclusive explanation appears only when some SLO is inconclusive."""
    paths = write_report([synthetic_result(scenario("< 100%"))], tmp_path)
    assert INCONCLUSIVE_RULE not in paths["markdown"].read_text(encoding="utf-8")


def _junit(paths) -> ET.Element:
    return ET.parse(paths["junit"]).getroot()


def test_junit_structure_and_counts_are_consistent(report):
    """testsuites > testsuite > testcase; every count equals the cases it describes."""
    paths, results = report
    root = _junit(paths)
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["repaychaos.report-tiny.sim", "repaychaos.report-tiny.load"]
    totals = {"tests": 0, "failures": 0, "skipped": 0, "errors": 0}
    for suite, result in zip(suites, results):
        cases = suite.findall("testcase")
        assert len(cases) == len(result["slo"]) == int(suite.get("tests"))
        assert int(suite.get("failures")) == sum(1 for c in cases if c.find("failure") is not None)
        assert int(suite.get("skipped")) == sum(1 for c in cases if c.find("skipped") is not None)
        assert suite.get("errors") == "0"
        for key in totals:
            totals[key] += int(suite.get(key))
    assert {k: int(root.get(k)) for k in totals} == totals


def test_junit_failure_message_has_observed_value_and_rule(report):
    """A failing SLO's message names the observed value and the rule."""
    root = _junit(report[0])
    case = root.find("testsuite/testcase[@name='support_contacts_per_10k < 1']")
    failure = case.find("failure")
    assert failure.get("type") == "fail"
    assert "support_contacts_per_10k: observed" in failure.get("message")
    assert "rule < 1 -> FAIL" in failure.get("message")


def test_junit_marks_gated_inconclusive_as_failure_of_type_inconclusive(report):
    """An inconclusive SLO that counts against the gate is a failure typed 'inconclusive'."""
    root = _junit(report[0])
    suite = root.find("testsuite[@name='repaychaos.report-tiny.sim']")
    case = [c for c in suite.findall("testcase") if c.get("name").startswith("stale_read_ratio ")][0]
    failure = case.find("failure")
    assert failure.get("type") == "inconclusive"
    assert "INCONCLUSIVE" in failure.get("message")


def test_junit_marks_allowed_inconclusive_as_skipped(tmp_path, inconclusive_result):
    """With fail_on_inconclusive off, the inconclusive SLO is skipped (visible), not passed silently."""
    probe = inconclusive_result["metrics"]["stale_read_ratio"]["value"]
    allowed = synthetic_result(scenario(f"< {100 * probe:.6f}%"), fail_on_inconclusive=False)
    root = _junit(write_report([allowed], tmp_path))
    skipped = root.findall("testsuite/testcase/skipped")
    assert len(skipped) == 1 and skipped[0].get("type") == "inconclusive"
    assert root.get("skipped") == "1"


def test_write_report_refuses_an_empty_list(tmp_path):
    """No results is a user error, not a traceback."""
    with pytest.raises(InvalidResult):
        write_report([], tmp_path)


def test_write_report_refuses_a_record_without_metrics(tmp_path):
    """A record missing a required key is refused with the key named."""
    with pytest.raises(InvalidResult, match="metrics"):
        write_report([{"source": "sim", "scenario": {}, "slo": [], "passed": True}], tmp_path)


FORMAT_EXAMPLE = {
    "schema": "repaychaos.result/1",
    "source": "sim",
    "scenario": {"name": "nightly-maintenance"},
    "seed": 7,
    "metrics": {
        "repayments": 412345, "reads": 903211, "stale_reads": 5120,
        "stale_read_ratio": {"value": 0.00567, "ci95": [0.0051, 0.0062]},
        "affected_ratio": {"value": 0.0101, "ci95": [0.0093, 0.0110]},
        "time_to_usable": {"mean": 0.41, "p50": 0.31, "p95": 0.9, "p99": 2.7, "p999": 190.0, "max": 1201.3},
        "never_usable": 4123,
        "visibility": {"t": [0, 1, 2, 5, 10, 30, 60], "p_stale": [1.0, 0.2, 0.05, 0.01, 0.004, 0.002, 0.001]},
        "support_contacts_per_10k": 1.9, "lost_repayments": 0, "duplicate_repayments": 0, "wrong_usable_reads": 0,
        "stale_reads_by_cause": {"queueing": 900, "sync_delay": 2100, "maintenance": 2000, "interface_bug": 120,
                                 "cutover": 0, "cache": 0},
    },
    "slo": [{"metric": "stale_read_ratio", "rule": "< 0.5%", "observed": 0.00567, "passed": False}],
    "passed": False,
}


def test_report_renders_a_record_with_only_the_spec_keys(tmp_path):
    """A docs/reference/result-file.md record without series, phases or verdicts still renders, with the verdict derived from `passed`."""
    paths = write_report([FORMAT_EXAMPLE], tmp_path)
    page = _Page()
    page.feed(paths["html"].read_text(encoding="utf-8"))
    assert len(page.images) == 3  # staleness, causes, time to usable: no series to plot over time
    assert paths["markdown"].read_text(encoding="utf-8").startswith("## repaychaos: FAIL")
    assert _junit(paths).get("failures") == "1"


def test_a_calibration_beside_its_result_is_found_and_one_of_another_file_is_not(tmp_path):
    """`repaychaos report` shows a calibration only for the result it was made from."""
    import json

    from repaychaos.reports.calibration import calibration_beside

    result = tmp_path / "result.json"
    result.write_text("{}")
    record = {"schema": "repaychaos.calibration/1", "source": {"result": str(result)}}
    (tmp_path / "calibration.json").write_text(json.dumps(record))
    (tmp_path / "calibration.png").write_bytes(b"png")
    assert calibration_beside(result) == (record, b"png")
    record["source"]["result"] = str(tmp_path / "other" / "result.json")
    (tmp_path / "calibration.json").write_text(json.dumps(record))
    assert calibration_beside(result) is None
    (tmp_path / "calibration.json").write_text("not json")
    assert calibration_beside(result) is None
