"""The page a person sees instead of a blocked site: what, why, when, and whom to ask."""

from __future__ import annotations

import datetime as dt

import jinja2

from addons.config import School
from addons.policy import Decision

# autoescape=True, not select_autoescape(): the latter does not escape `*.html.j2` templates.
_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("addons", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


def render_block_page(
    school: School, decision: Decision, reference: int, at: dt.datetime, url: str | None = None
) -> str:
    """Self-contained HTML (no external resources): every value escaped by the template."""
    rule = decision.rule
    return _TEMPLATES.get_template("blockpage.html.j2").render(
        school=school,
        site=decision.host,
        url=url,
        category=(decision.category or "").replace("_", " "),
        policy=rule.policy if rule else "",
        clause=rule.clause if rule else "",
        rule=rule.name if rule else "",
        time=at.astimezone(school.timezone).strftime("%A %d %B %Y, %H:%M"),
        reference=reference,
    )
