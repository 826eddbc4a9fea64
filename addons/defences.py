"""The gateway's own rules, beside the school's: what they are called in incidents, on `check`
and in the report.

The school's rules block categories of sites. These block ways around the filter, whatever the
site: each has a rule name and a category for the incident log (a contract: the report and the
school's own queries group by them), a label a person can read, and a one-line explanation for
the report's "Terms" note.
"""

from __future__ import annotations

from dataclasses import dataclass

from addons.config import Rule


@dataclass(frozen=True, slots=True)
class Defence:
    """One of the gateway's own rules."""

    rule: Rule  # what incidents and decisions carry; `rule.policy` says why, for a block page
    category: str  # the incidents' `category`
    label: str  # its name in the report, for the SLT
    explanation: str  # one line in the report's "Terms" note


TLS_WITHOUT_SNI = Defence(
    Rule(
        name="tls-without-sni",
        groups=None,
        categories=(),
        when="always",
        action="block",
        policy=(
            "HTTPS to a bare IP address whose greeting names no site (no SNI) is refused while "
            "a blocking rule applies: the gateway cannot tell which site it is."
        ),
        clause="Gateway default (proxy.allow_tls_without_sni)",
    ),
    category="tls_without_sni",
    label="HTTPS to a bare address without a site name",
    explanation=(
        "a connection to an IP address that does not say which site it wants (no SNI), as "
        "tools that get around filters make; refused while a blocking rule applies to the "
        "group, unless proxy.allow_tls_without_sni lets the group through."
    ),
)

DEFENCES: dict[str, Defence] = {d.rule.name: d for d in (TLS_WITHOUT_SNI,)}
"""Every defence by its rule name, as incidents record it."""
