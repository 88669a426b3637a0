"""Fill answers with clinic facts, never inventing one that is missing."""

from __future__ import annotations

import re
from collections.abc import Sequence

from .knowledge import CARE_FACTS, PLACEHOLDERS, WEEKDAY_NAMES_ID, WEEKDAYS, ClinicFacts, KnowledgeBase

_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")
# Nice-to-have facts: when unknown their line is simply left out.
_OPTIONAL = frozenset({"maps_url", "whatsapp", "parking"})


def clinic_values(clinic: ClinicFacts, closed_word: str) -> dict[str, str | None]:
    """Each placeholder's text, or None when the clinic has not given that fact."""
    return {
        "clinic_name": clinic.name,
        "address": clinic.address,
        "maps_url": clinic.maps_url,
        "phone": clinic.phone,
        "whatsapp": clinic.whatsapp,
        "website": clinic.website,
        "hours": format_hours(clinic.opening_hours, closed_word),
        "prices": "\n".join(f"• {item}: {price}" for item, price in clinic.prices) or None,
        "payment_methods": clinic.payment_methods,
        "insurance": clinic.insurance,
        "parking": clinic.parking,
        "home_visit": clinic.home_visit,
        **{name: clinic.care.get(name) for name in CARE_FACTS},
    }


def format_hours(hours: dict[str, tuple[str, str] | None], closed_word: str) -> str | None:
    """Opening hours per weekday, consecutive days with the same hours on one line."""
    if not hours:
        return None
    lines: list[str] = []
    run_start = 0
    for index in range(1, len(WEEKDAYS) + 1):
        if index < len(WEEKDAYS) and hours.get(WEEKDAYS[index], "?") == hours.get(WEEKDAYS[run_start], "?"):
            continue
        value = hours.get(WEEKDAYS[run_start], "?")
        days = WEEKDAY_NAMES_ID[run_start]
        if index - 1 > run_start:
            days = f"{days}–{WEEKDAY_NAMES_ID[index - 1]}"
        if value != "?":
            text = closed_word if value is None else f"{value[0].replace(':', '.')}–{value[1].replace(':', '.')}"
            lines.append(f"{days}: {text}")
        run_start = index
    return "\n".join(lines) or None


def render(template: str, kb: KnowledgeBase) -> tuple[str, bool]:
    """Fill placeholders; returns (text, whether some fact was missing)."""
    values = clinic_values(kb.clinic, kb.texts["closed_day"])
    missing = False
    lines: list[str] = []
    for line in template.splitlines():
        names = _PLACEHOLDER.findall(line)
        absent = [name for name in names if values.get(name) is None]
        if absent and all(name in _OPTIONAL for name in absent):
            continue
        if absent:
            missing = True
        lines.append(_PLACEHOLDER.sub(lambda m: values.get(m.group(1)) or kb.texts["missing_fact"], line))
    text = "\n".join(lines)
    if missing:
        text = f"{text}\n{kb.texts['missing_fact_offer']}"
    return text, missing


def fill(template: str, values: dict[str, str]) -> str:
    """A text with its {name} placeholders replaced by `values` (others are left as they are)."""
    for name, value in values.items():
        template = template.replace("{" + name + "}", value)
    return template


def numbered(titles: Sequence[str]) -> str:
    return "\n".join(f"{i}. {title}" for i, title in enumerate(titles, start=1))


def bulleted(titles: Sequence[str]) -> str:
    return "\n".join(f"• {title}" for title in titles)


def split_text(text: str, limit: int) -> list[str]:
    """Cut a reply into messages of at most `limit` characters, in order: between paragraphs
    where possible, else between lines, else between words (a word longer than the limit is
    cut)."""
    if len(text) <= limit:
        return [text]
    chunks: list[str] = []
    for separator in ("\n\n", "\n", " "):
        parts = text.split(separator)
        if len(parts) > 1:
            current = ""
            for part in parts:
                candidate = f"{current}{separator}{part}" if current else part
                if len(candidate) <= limit:
                    current = candidate
                    continue
                if current:
                    chunks.append(current)
                if len(part) <= limit:
                    current = part
                else:
                    *done, current = split_text(part, limit)
                    chunks.extend(done)
            if current:
                chunks.append(current)
            return [chunk.strip() for chunk in chunks if chunk.strip()]
    return [text[i : i + limit] for i in range(0, len(text), limit)]
