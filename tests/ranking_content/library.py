"""A fixture library for ranking tests: Larkspur Logistics, a made-up company that is not the demo.

Four apps (code hosting, time tracking, HR, service desk) and aids written the way their owners
would write them. Tests assert what a learner would agree with, on pages of these apps.
"""

from __future__ import annotations

from pathlib import Path

APPS = {
    "forge": """\
id: forge
name: CodeForge
rules:
  - pattern: "https://forge.larkspur.test/**"
contexts:
  - id: forge-merge
    name: Merge request
    rule: "https://forge.larkspur.test/*/merge/*"
    aids: [merge-checklist]
""",
    "hours": """\
id: hours
name: Clockwise
rules:
  - pattern: "https://hours.larkspur.test/**"
""",
    "people": """\
id: people
name: PeoplePort
rules:
  - pattern: "https://people.larkspur.test/**"
""",
    "desk": """\
id: desk
name: HelpLine
rules:
  - pattern: "https://desk.larkspur.test/**"
""",
}


def _aid(
    aid_id: str,
    title: str,
    body: str,
    *,
    apps: str,
    summary: str = "",
    tags: str = "[]",
    owner: str = "Platform Guild",
) -> str:
    return f"""---
id: {aid_id}
title: {title}
summary: {summary or title}
type: howto
tags: {tags}
apps: {apps}
audience: []
owner: {owner}
status: published
verified_at: 2026-09-01
---
{body}
"""


AIDS = {
    "merge-checklist": _aid(
        "merge-checklist",
        "Before you merge",
        "Rebase on main, wait for the pipeline to go green, squash fixup commits.",
        apps="[forge]",
        owner="Release Office",
    ),
    "codeowners-file": _aid(
        "codeowners-file",
        "Who reviews a change (the CODEOWNERS file)",
        "Each line maps a path pattern to the teams that must review changes to it.",
        apps="[forge]",
    ),
    "main-branch-rules": _aid(
        "main-branch-rules",
        "Rules for the main branch",
        "Two reviewers must agree before anything lands on main. Force pushes are blocked.",
        apps="[forge]",
        tags="[Approvals, Branch protection]",
    ),
    "forge-tokens": _aid(
        "forge-tokens",
        "Personal access tokens",
        "Create a token with the narrowest scopes; tokens expire after ninety days.",
        apps="[forge]",
        summary="Scopes, expiry and revoking a leaked token.",
    ),
    "log-hours": _aid(
        "log-hours",
        "Filling in your time sheet",
        "Enter the hours for each project every Friday. Your lead signs off on Monday.",
        apps="[hours]",
        owner="Finance Operations",
    ),
    "hours-overtime": _aid(
        "hours-overtime",
        "Overtime rules",
        "Overtime needs written agreement from your lead in advance.",
        apps="[hours]",
    ),
    "leave-accrue": _aid(
        "leave-accrue",
        "How annual leave days accrue",
        "You earn two days per month worked; unused days carry over until March.",
        apps="[people]",
        owner="People Team",
    ),
    "expecting-a-baby": _aid(
        "expecting-a-baby",
        "When you are pregnant",
        "Tell your manager by the fifteenth week; the people team arranges the risk review.",
        apps="[people]",
        owner="People Team",
    ),
    "tax-forms": _aid(
        "tax-forms",
        "Where to find your W-2",
        "Year-end tax statements are under Documents, ready by January 31.",
        apps="[people]",
        owner="People Team",
    ),
    "change-photo": _aid(
        "change-photo",
        "Badge and directory details",
        "Update your phone extension and desk location in the directory.",
        apps="[people]",
    ),
    "incident-priority": _aid(
        "incident-priority",
        "Choosing an incident priority",
        "A P1 stops work for a whole site; page the on-call engineer at once. A P3 can wait.",
        apps="[desk]",
        owner="Service Desk",
    ),
    "urgent-tickets": _aid(
        "urgent-tickets",
        "Marking a ticket urgent",
        "Only when a customer shipment is held. Say why in the first line.",
        apps="[desk]",
        owner="Service Desk",
    ),
    "vendor-scorecard": _aid(
        "vendor-scorecard",
        "Rating a carrier on the quarterly scorecard",
        "Score on-time delivery, damage and paperwork from one to five.",
        apps="[desk]",
    ),
    "reassign-ticket": _aid(
        "reassign-ticket",
        "Handing a ticket to another team",
        "Pick the receiving queue and write a handover note; the requester is told.",
        apps="[desk]",
    ),
    "desk-inbox": _aid(
        "desk-inbox",
        "Inbox filters and saved views",
        "Save a view of the tickets you watch; inbox filters refresh every minute.",
        apps="[desk]",
    ),
    "desk-reports": _aid(
        "desk-reports",
        "Weekly reports for team leads",
        "Reports list tickets per queue; leads get them by email on Monday.",
        apps="[desk]",
    ),
}

for n, topic in enumerate(["Printer jams", "Parking permits", "Canteen menu", "Locker keys"]):
    AIDS[f"desk-misc-{n}"] = _aid(
        f"desk-misc-{n}",
        topic,
        f"{topic}: ask at reception. Tickets about this are closed; handing over is not needed.",
        apps="[desk]",
    )


def write_library(root: Path) -> Path:
    (root / "apps").mkdir(parents=True, exist_ok=True)
    (root / "aids").mkdir(parents=True, exist_ok=True)
    for app_id, text in APPS.items():
        (root / "apps" / f"{app_id}.yaml").write_text(text, encoding="utf-8")
    for aid_id, text in AIDS.items():
        (root / "aids" / f"{aid_id}.md").write_text(text, encoding="utf-8")
    return root
