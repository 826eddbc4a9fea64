"""Plain-language notes on the policy's effectiveness for the Local Governing Body (policy
section 5), written from the term's figures alone: they name services and groups, never people.
"""

from __future__ import annotations

from reports.model import Report, Tally

LEVEL = 0.10  # a change of less than 10% between the halves of a term reads as "about level"


def effectiveness_notes(report: Report) -> list[str]:
    """A few sentences a governor can read without the tables."""
    totals, weeks = report.totals, report.trend
    if totals.attempts == 0:
        return [
            "No attempts to reach blocked social networking sites were recorded this term.",
            "A quiet log also results if devices bypass the gateway: IT should confirm that "
            "school devices can reach the internet only through it.",
        ]
    notes = [
        f"Over {_plural(len(weeks), 'week')}, the gateway recorded "
        f"{_plural(totals.attempts, 'attempt')} ({_plural(totals.requests, 'request')}) to "
        f"reach blocked or monitored sites, from {_plural(totals.people, 'person', 'people')} "
        f"or devices; {_plural(totals.repeat_people, 'person', 'people')} made more than one.",
        _trend_note(report),
        f"{_share(report.school_day.inside, totals.attempts)} of attempts were during the school "
        f"day ({report.school_hours[0]} to {report.school_hours[1]} on school days), when the "
        "policy asks staff not to access social networking sites.",
    ]
    if report.by_group and report.by_group[0].attempts:
        top = report.by_group[0]
        share = _share(top, totals.attempts)
        notes.append(f"Most attempts came from the {top.group} group ({share}).")
    if report.by_domain:
        names = [d.domain for d in report.by_domain[:3]]
        notes.append(f"The services most often attempted were {_listing(names)}.")
    changes = len(report.policy_changes)
    notes.append(
        f"The policy or its blocklists changed {_plural(changes, 'time')} this term (listed below)."
        if changes
        else "The policy and its blocklists did not change this term."
    )
    return notes


def _trend_note(report: Report) -> str:
    weeks = [w.attempts for w in report.trend]
    if len(weeks) < 2:
        return "The term is too short to show a trend."
    half = len(weeks) // 2
    first, second = sum(weeks[:half]) / half, sum(weeks[half:]) / (len(weeks) - half)
    busiest = max(report.trend, key=lambda w: w.attempts)
    peak = f"The busiest week was {busiest.week} ({_plural(busiest.attempts, 'attempt')})."
    if first == 0 or abs(second - first) / first < LEVEL:
        return f"Attempts stayed about level through the term ({first:.1f} a week). {peak}"
    direction = "fell" if second < first else "rose"
    change = abs(second - first) / first
    advice = (
        "the policy appears to be understood."
        if direction == "fell"
        else "the SLT may wish to remind staff of the policy (section 4)."
    )
    return (
        f"Attempts {direction} by {change:.0%}, from {first:.1f} a week in the first half of the "
        f"term to {second:.1f} in the second: {advice} {peak}"
    )


def _share(part: Tally, total: int) -> str:
    return f"{part.attempts / total:.0%}" if total else "0%"


def _plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count:,} {one if count == 1 else many or one + 's'}"


def _listing(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
