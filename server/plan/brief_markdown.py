"""The handover brief as Markdown, from ``compute_brief``'s data.

Every piece of user text goes through ``md``: one line, and the characters that would start
Markdown or HTML syntax (emphasis, links, code, headings, tables, tags, entities) escaped with
a backslash, so a task called ``<script>`` or ``# not a heading`` stays text.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from crdt import markdown_from_prosemirror

_SPECIAL = re.compile(r"[\\`*_\[\]<>#|~]|&(?=#?\w+;)")
# What would start a block where the text starts a line (or a list item): a list, a rule.
_LINE_START = re.compile(r"^([-+=])|^(\d{1,9})([.)])")


def md(value: Any) -> str:
    """User text as literal inline Markdown, on one line."""
    text = " ".join(str(value if value is not None else "").split())
    text = _SPECIAL.sub(r"\\\g<0>", text)
    return _LINE_START.sub(lambda m: f"\\{m[1]}" if m[1] else f"{m[2]}\\{m[3]}", text)


def cell(value: Any) -> str:
    return md(value) or "—"


def day(value: date | datetime | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return value.isoformat()


def pct(value: float | int | None) -> str:
    return "—" if value is None else f"{value}%"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return [*out, ""]


def brief_markdown(b: dict[str, Any]) -> str:
    plan = b["plan"]
    lines: list[str] = [
        f"# Handover brief: {md(plan['title'])}",
        "",
        f"Customer: **{md(plan['customer'])}** · plan created {day(plan['created_at'].date())} · "
        f"brief of {day(b['today'])}",
        "",
    ]
    status = b["status"]
    lines += [f"Status: **{status['rag']}**" + (" (set by hand)" if status["override"] else "")]
    lines += [f"- {md(r)}" for r in status["reasons"]]
    if status["override"]:
        lines.append(f"- Reason given: {md(status['override']['reason'])}")
    lines.append("")

    lines += ["## Customer and key contacts", ""]
    if b["contacts"]:
        lines += table(
            ["Name", "Role", "Email", "Side"],
            [
                [cell(c["name"]), cell(c["role"]), cell(c["email"]), cell(c["side"])]
                for c in b["contacts"]
            ],
        )
    else:
        lines += ["No Key contacts table in the plan.", ""]
    lines += ["People in the plan:", ""]
    lines += table(
        ["Name", "Role in Tandem", "Side"],
        [[cell(m["name"]), m["role"], m["side"]] for m in b["members"]],
    )

    lines += ["## Objectives", ""]
    if b["objectives"]:
        for section in b["objectives"]:
            if section["heading"].lower() != "objectives" or len(b["objectives"]) > 1:
                lines += [f"### {md(section['heading'])}", ""]
            body = markdown_from_prosemirror({"type": "doc", "content": section["blocks"]})
            lines += [body.rstrip("\n"), ""]
    else:
        lines += ["No objectives section in the plan (a heading such as “Objectives”).", ""]

    lines += ["## Key results", ""]
    if b["key_results"]:
        lines += table(
            ["Key result", "Baseline", "Current", "Target", "Date", "Trend", "Values over time"],
            [
                [
                    cell(k["metric"]),
                    cell(k["baseline"]),
                    cell(k["current"]),
                    cell(k["target"]),
                    cell(k["date"]),
                    k["trend"],
                    " → ".join(md(p["value"]) for p in k["points"]) or "—",
                ]
                for k in b["key_results"]
            ],
        )
    else:
        lines += ["No key results recorded.", ""]

    counts = b["milestone_counts"]
    lines += [
        "## Milestones",
        "",
        f"{counts['met']} met on time, {counts['met late']} met late, {counts['missed']} missed, "
        f"{counts['upcoming']} upcoming.",
        "",
    ]
    if b["milestones"]:
        lines += table(
            ["Milestone", "Outcome", "Due", "First due", "Done", "Times slipped", "Days moved"],
            [
                [
                    cell(m["text"]),
                    m["outcome"],
                    day(m["due"]),
                    day(m["first_due"]),
                    day(m["done_on"]),
                    str(m["slipped"]),
                    str(m["slip_days"]),
                ]
                for m in b["milestones"]
            ],
        )

    lines += ["## Open and overdue commitments by side", ""]
    for group in b["commitments"]:
        if not group["open"]:
            continue
        lines += [
            f"### {group['label']}: {len(group['open'])} open, {len(group['overdue'])} overdue",
            "",
        ]
        lines += table(
            ["Commitment", "Owner", "Due", "Overdue by"],
            [
                [
                    cell(t["text"]),
                    cell(t["owner"]),
                    day(t["due"]),
                    f"{t['overdue_days']} days" if t["overdue_days"] else "",
                ]
                for t in group["open"]
            ],
        )

    lines += [
        "## How reliably each side kept its dates",
        "",
        "Dated tasks done on or before their date are kept; done after it, or open past it, "
        "late. The slip of a late task counts from the first date it was given.",
        "",
    ]
    lines += table(
        ["Side", "On time", "Kept", "Late (still open)", "Average slip", "Dates moved later"],
        [
            [
                r["label"],
                pct(r["on_time_pct"]),
                str(r["kept"]),
                f"{r['late']} ({r['open_late']})",
                "—" if r["avg_slip_days"] is None else f"{r['avg_slip_days']:g} days",
                str(r["moved_later"]),
            ]
            for r in b["reliability"]
            if r["judged"] or r["moved_later"]
        ],
    )

    lines += ["## Risks and how they developed", ""]
    if b["risks"]:
        for r in b["risks"]:
            state = "open" if r["open"] else "closed"
            lines.append(
                f"- **{md(r['risk']) or '(unnamed)'}**: {cell(r['severity'])}, {state}; "
                f"owner {cell(r['owner'])}; mitigation: {cell(r['mitigation'])}"
            )
            lines += [f"  - {day(s['at'])}, {md(s['who'])}: {md(s['what'])}" for s in r["steps"]]
        lines.append("")
    else:
        lines += ["No risks recorded.", ""]

    lines += ["## Key events", ""]
    lines += [
        f"- {day(e['at'])}: {md(e['what'])}" + (f" ({md(e['who'])})" if e["who"] else "")
        for e in b["events"]
    ]
    lines.append("")

    if b["internal"] is not None:
        lines += [
            "## Internal account plan (vendor only)",
            "",
            "Not shared with the customer.",
            "",
            (b["internal_markdown"] or "The internal account plan is empty.").rstrip("\n"),
            "",
        ]
    return "\n".join(lines).rstrip("\n") + "\n"
