"""PII-like patterns masked in place: e-mail addresses, phone numbers, IPv4/IPv6 addresses."""

from __future__ import annotations

import regex

from cpt_contract.clean import PII_REPLACEMENTS, PiiStep

EMAIL = regex.compile(
    r"(?<![\w.+-])[\w.+-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}\b"
)
#: International or national numbers with separators: +91 80 2345 6789, (555) 123-4567,
#: 030-1234567. At least 9 digits and no date inside, so dates, times and years stay.
PHONE = regex.compile(
    r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{2,4}(?:[\s.-]\d{2,5}){1,4}(?![\w])"
)
IPV4 = regex.compile(
    r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\d.])"
)
IPV6 = regex.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}(?![\w:])")


#: A date inside a candidate (2018-07-01 15:49): a date with a time is not a phone number.
DATE = regex.compile(r"\b(?:1[89]|20)\d\d[-./](?:0?[1-9]|1[0-2])[-./](?:0?[1-9]|[12]\d|3[01])\b")


def _phone(match: regex.Match[str]) -> str:
    text = match.group(0)
    digits = sum(c.isdigit() for c in text)
    return PII_REPLACEMENTS["phone"] if digits >= 9 and not DATE.search(text) else text


def mask(text: str, step: PiiStep) -> tuple[str, dict[str, int]]:
    """The masked text and how many of each kind were masked."""
    counts = {"email": 0, "phone": 0, "ip": 0}
    if step.emails:
        text, counts["email"] = EMAIL.subn(PII_REPLACEMENTS["email"], text)
    if step.ips:
        text, n4 = IPV4.subn(PII_REPLACEMENTS["ip"], text)
        text, n6 = IPV6.subn(PII_REPLACEMENTS["ip"], text)
        counts["ip"] = n4 + n6
    if step.phones:
        before = text
        text = PHONE.sub(_phone, text)
        if text != before:
            counts["phone"] = text.count(PII_REPLACEMENTS["phone"]) - before.count(
                PII_REPLACEMENTS["phone"]
            )
    return text, counts
