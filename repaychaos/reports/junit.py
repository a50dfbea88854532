"""junit.xml: one test case per SLO per result, so any CI shows SLOs as tests.

Structure (the common Ant/Jenkins JUnit schema): ``testsuites`` > ``testsuite`` (one per
result) > ``testcase`` (one per SLO). A failing SLO carries ``<failure>`` whose message
says the observed value and the rule. An inconclusive SLO (95 % interval straddles the
threshold) is a ``<failure type="inconclusive">`` when it counts against the gate, and a
``<skipped type="inconclusive">`` when the run was told not to fail on it — never a
silent pass. Counts on every suite and on the root are consistent with the cases.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any, Mapping, Sequence

from repaychaos.reports.fmt import format_value, slo_sentence, verdict_of

__all__ = ["junit_xml", "suite_name"]


def suite_name(result: Mapping[str, Any]) -> str:
    """``repaychaos.<scenario>.<source>``: a stable class name CI tools group by."""
    return f"repaychaos.{result['scenario'].get('name', 'scenario')}.{result.get('source', 'result')}"


def _suite(result: Mapping[str, Any]) -> ET.Element:
    name = suite_name(result)
    suite = ET.Element("testsuite", name=name)
    props = ET.SubElement(suite, "properties")
    for key, value in (("source", result.get("source")), ("seed", result.get("seed")),
                       ("replications", result.get("replications", 1)), ("verdict", verdict_of(result))):
        ET.SubElement(props, "property", name=key, value=str(value))
    failures = skipped = 0
    for row in result.get("slo", []):
        case = ET.SubElement(suite, "testcase", classname=name, name=f"{row['metric']} {row['rule']}", time="0")
        verdict = verdict_of(row)
        message = slo_sentence(row)
        if verdict == "fail" or (verdict == "inconclusive" and not row.get("passed")):
            failures += 1
            failure = ET.SubElement(case, "failure", message=message, type=verdict)
            failure.text = message
        elif verdict == "inconclusive":
            skipped += 1
            ET.SubElement(case, "skipped", message=message, type="inconclusive")
        out = ET.SubElement(case, "system-out")
        out.text = f"observed={format_value(row['metric'], row.get('observed'))} rule={row['rule']} verdict={verdict}"
    suite.set("tests", str(len(result.get("slo", []))))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    suite.set("skipped", str(skipped))
    suite.set("time", "0")
    return suite


def junit_xml(results: Sequence[Mapping[str, Any]]) -> str:
    """The whole junit.xml text for ``results``."""
    root = ET.Element("testsuites", name="repaychaos")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for result in results:
        suite = _suite(result)
        for key in totals:
            totals[key] += int(suite.get(key, "0"))
        root.append(suite)
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", "0")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
