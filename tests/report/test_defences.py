"""The gateway's own rules in the report: named by their label wherever rules appear, and
explained in a short "Terms" note (html and md), which is absent when none of them was met."""

from __future__ import annotations

from typing import Any

from reports.build import build_report
from reports.period import iso_week
from reports.render import render_html, render_md
from tests.report.conftest import MONDAY_AFTER_W43, Log

SNI_LABEL = "HTTPS to a bare address without a site name"


def _week(log: Log) -> tuple[str, str, dict[str, Any]]:
    config = log.config()
    report = build_report(
        log.engine, config, iso_week("2026-W43", config.school.timezone), now=MONDAY_AFTER_W43
    )
    return render_html(report), render_md(report), report.to_dict()


def test_the_gateways_own_rules_are_named_and_explained(log: Log) -> None:
    log.add("2026-10-19 10:00:00", "10.20.0.9", "203.0.113.5", rule="tls-without-sni")
    log.add("2026-10-19 10:01:00", "10.20.0.9", "203.0.113.5", rule="tls-without-sni")
    log.add("2026-10-20 11:30:00", "10.20.0.7", "facebook.com")
    html, md, data = _week(log)

    by_rule = {row["rule"]: row for row in data["by_rule"]}
    assert by_rule["tls-without-sni"]["attempts"] == 1
    assert by_rule["tls-without-sni"]["policy"].startswith("HTTPS to a bare IP address")
    assert by_rule["tls-without-sni"]["clause"] == "Gateway default (proxy.allow_tls_without_sni)"
    assert [d["rule"] for d in data["glossary"]] == ["tls-without-sni"]

    for page in (html, md):
        assert page.count(SNI_LABEL) >= 3  # latest attempts, by rule, terms
        assert "school-it-ban" in page  # the school's rules keep their names
    assert "<h2>Terms</h2>" in html and "<code>tls-without-sni</code>" in html
    assert "## Terms\n" in md
    assert f"- **{SNI_LABEL}**: a connection to an IP address that does not say" in md
    assert "proxy.allow_tls_without_sni" in md


def test_no_terms_note_when_only_the_schools_rules_decided(log: Log) -> None:
    log.add("2026-10-19 10:00:00", "10.20.0.9", "facebook.com")
    html, md, data = _week(log)
    assert data["glossary"] == []
    assert "Terms" not in html and "## Terms" not in md
