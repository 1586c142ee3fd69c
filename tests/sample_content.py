"""A small content set written by tests, independent of the demo content."""

from __future__ import annotations

from pathlib import Path

APP_PAYROLL = """\
id: payroll
name: Payroll Cloud
description: Pay, payslips and bank details.
rules:
  - pattern: "https://*.payroll.example.com/**"
  - pattern: "https://payroll.example.com/app/**"
contexts:
  - id: payroll-bank
    name: Bank details
    rule: "https://*.payroll.example.com/#/employee/*/bank"
    aids: [change-bank-details, payroll-fraud-warning]
  - id: payroll-payslip
    name: Payslip
    rule: "https://*.payroll.example.com/payslips/*"
    title_pattern: "Payslip"
    aids: [read-your-payslip]
"""

APP_TRAVEL = """\
id: travel
name: TripDesk
rules:
  - pattern: "https://trips.example.org/**"
contexts:
  - id: travel-new-trip
    name: New trip request
    rule: "https://trips.example.org/requests/new"
    aids: [book-a-trip]
"""


def aid(
    aid_id: str,
    title: str,
    body: str,
    *,
    apps: str = "[payroll]",
    status: str = "published",
    audience: str = "[]",
    type_: str = "howto",
    summary: str = "",
    tags: str = "[]",
) -> str:
    return f"""---
id: {aid_id}
title: {title}
summary: {summary or title}
type: {type_}
tags: {tags}
apps: {apps}
audience: {audience}
owner: team@example.com
status: {status}
verified_at: 2026-09-01
---
{body}
"""


AIDS = {
    "change-bank-details": aid(
        "change-bank-details",
        "Change your bank details",
        "Open **Bank details**, enter the new IBAN and confirm with your second factor.\n\n"
        "Changes made after the 20th apply to next month's salary.",
        tags="[iban, salary]",
    ),
    "payroll-fraud-warning": aid(
        "payroll-fraud-warning",
        "Spot payroll diversion fraud",
        "Never change bank details because an email asked you to. Call the payroll team.",
        type_="policy",
    ),
    "read-your-payslip": aid(
        "read-your-payslip",
        "Read your payslip",
        "Gross pay, deductions, net pay: what each line on the payslip means.",
    ),
    "approve-overtime": aid(
        "approve-overtime",
        "Approving overtime claims",
        "Managers approve overtime claims weekly. Check the hours against the rota before you "
        "approve.",
        audience="[managers]",
    ),
    "payroll-calendar": aid(
        "payroll-calendar",
        "Payroll calendar",
        "Salaries are paid on the 25th. Cut-off for changes is the 20th.",
        type_="faq",
    ),
    "draft-pension": aid(
        "draft-pension",
        "Pension contributions (draft)",
        "Draft text about pension contributions and salary sacrifice.",
        status="draft",
    ),
    "holiday-pay": aid(
        "holiday-pay",
        "Holiday pay and vacation days",
        "How vacation days are paid out and how unused holiday carries over.",
        apps="[]",
    ),
    "book-a-trip": aid(
        "book-a-trip",
        "Book a business trip",
        "Request approval before booking flights and hotels. Use the preferred agency.",
        apps="[travel]",
    ),
    "expense-receipts": aid(
        "expense-receipts",
        "Submitting receipts for reimbursement",
        "Photograph each receipt. Reimbursements are paid with the next salary run.",
        apps="[travel]",
        tags="[receipts, refund]",
    ),
}


def write_sample(root: Path) -> Path:
    (root / "apps").mkdir(parents=True, exist_ok=True)
    (root / "aids").mkdir(parents=True, exist_ok=True)
    (root / "apps" / "payroll.yaml").write_text(APP_PAYROLL, encoding="utf-8")
    (root / "apps" / "travel.yaml").write_text(APP_TRAVEL, encoding="utf-8")
    for aid_id, text in AIDS.items():
        (root / "aids" / f"{aid_id}.md").write_text(text, encoding="utf-8")
    return root
