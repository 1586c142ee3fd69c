"""Workplace synonyms: a query for one phrase also finds aids that use another.

Groups are general enterprise vocabulary (HR, finance, sales, IT), not tuned to any content set.
Matching is on lowercase, unstemmed words; multi-word entries match as consecutive words.
"""

from __future__ import annotations

GROUPS: tuple[tuple[str, ...], ...] = (
    ("pto", "vacation", "time off", "leave", "holiday", "absence", "days off"),
    ("sick leave", "sick day", "illness", "sickness"),
    ("reimbursement", "refund", "repayment", "payback", "claim"),
    ("expense", "expenses", "spend", "cost", "outlay"),
    ("receipt", "invoice", "proof of purchase"),
    ("payslip", "pay slip", "paystub", "pay stub", "salary statement", "pay statement"),
    ("salary", "pay", "wage", "wages", "compensation", "payroll"),
    ("bank details", "bank account", "direct deposit", "iban"),
    ("benefits", "perks", "insurance", "pension"),
    ("onboarding", "new hire", "new starter", "induction", "orientation"),
    ("offboarding", "leaver", "resignation", "exit"),
    ("manager", "supervisor", "line manager", "boss"),
    ("approve", "approval", "sign off", "authorize", "authorise"),
    ("reject", "decline", "deny", "send back"),
    ("opportunity", "deal", "prospect"),
    ("account", "customer", "client"),
    ("contact", "lead"),
    ("pipeline", "funnel"),
    ("forecast", "projection", "outlook"),
    ("quote", "quotation", "proposal", "estimate"),
    ("discount", "price reduction", "markdown"),
    ("contract", "agreement"),
    ("login", "log in", "sign in", "signin", "sso"),
    ("password", "passphrase", "credentials"),
    ("mfa", "2fa", "two factor", "multi factor", "authenticator"),
    ("phishing", "scam", "suspicious email"),
    ("mileage", "car allowance", "kilometres", "miles", "travel distance"),
    ("travel", "trip", "business trip"),
    ("per diem", "daily allowance", "meal allowance"),
    ("policy", "rule", "guideline", "regulation"),
    ("delete", "remove", "erase"),
    ("create", "add", "new", "set up"),
    ("edit", "update", "change", "modify"),
    ("report", "dashboard", "analytics"),
    ("mentor", "expert", "buddy", "coach"),
    ("help", "support", "assistance"),
    ("gdpr", "privacy", "personal data", "data protection"),
    ("address", "home address", "location"),
    ("timesheet", "time sheet", "hours", "time tracking"),
    ("overtime", "extra hours"),
    ("parental leave", "maternity", "paternity"),
)


def _build() -> dict[tuple[str, ...], tuple[tuple[str, ...], ...]]:
    table: dict[tuple[str, ...], tuple[tuple[str, ...], ...]] = {}
    for group in GROUPS:
        phrases = [tuple(p.split()) for p in group]
        for p in phrases:
            others = tuple(o for o in phrases if o != p)
            table[p] = tuple(dict.fromkeys(table.get(p, ()) + others))
    return table


TABLE = _build()
MAX_PHRASE = max(len(k) for k in TABLE)


def expand(words: list[str]) -> list[tuple[int, int, tuple[tuple[str, ...], ...]]]:
    """Find synonym phrases in `words`: (start, end, alternatives) spans, longest match first."""
    spans: list[tuple[int, int, tuple[tuple[str, ...], ...]]] = []
    i = 0
    while i < len(words):
        for size in range(min(MAX_PHRASE, len(words) - i), 0, -1):
            key = tuple(words[i : i + size])
            if key in TABLE:
                spans.append((i, i + size, TABLE[key]))
                i += size - 1
                break
        i += 1
    return spans
