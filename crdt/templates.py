"""The built-in plan templates, as ProseMirror JSON for the editor's schema.

Dates in a template are relative to the day the plan is created, so a new plan starts with a
timeline that makes sense. Owners are role placeholders (``name:`` mentions) the CSM retypes
as real people.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

Node = dict[str, Any]


def _t(text: str, *marks: str) -> Node:
    node: Node = {"type": "text", "text": text}
    if marks:
        node["marks"] = [{"type": m} for m in marks]
    return node


def h(level: int, text: str) -> Node:
    return {"type": "heading", "attrs": {"level": level}, "content": [_t(text)]}


def p(*parts: str | Node) -> Node:
    content = [_t(x) if isinstance(x, str) else x for x in parts if x != ""]
    return {"type": "paragraph", "content": content} if content else {"type": "paragraph"}


def bullets(*items: str) -> Node:
    return {
        "type": "bulletList",
        "content": [{"type": "listItem", "content": [p(i)]} for i in items],
    }


def owner(label: str, side: str) -> Node:
    return {"type": "mention", "attrs": {"id": f"name:{label}", "label": label, "side": side}}


def due(day: date) -> Node:
    return {"type": "dueDate", "attrs": {"date": day.isoformat()}}


def task(text: str, *extra: Node, checked: bool = False) -> Node:
    parts: list[str | Node] = [text]
    for node in extra:
        parts += [" ", node]
    return {"type": "taskItem", "attrs": {"checked": checked}, "content": [p(*parts)]}


def tasks(*items: Node) -> Node:
    return {"type": "taskList", "content": list(items)}


def table(header: list[str], *rows: list[str]) -> Node:
    def cell(kind: str, text: str) -> Node:
        return {"type": kind, "content": [p(text)]}

    return {
        "type": "table",
        "content": [
            {"type": "tableRow", "content": [cell("tableHeader", c) for c in header]},
            *({"type": "tableRow", "content": [cell("tableCell", c) for c in r]} for r in rows),
        ],
    }


def doc(*content: Node) -> Node:
    return {"type": "doc", "content": list(content)}


CONTACTS = ["Name", "Role", "Email", "Side"]
KEY_RESULTS = ["Metric", "Baseline", "Target", "Current", "Unit", "Date"]
RISKS = ["Risk", "Severity", "Owner", "Mitigation"]
# Sample rows are prompts ("e.g. ...", "The target"), never figures or ratings: a plan shared as
# it was created must not show the customer invented numbers, and a sample "high" risk would
# turn a new plan amber. The severity prompt is no rating, so the dashboard counts it unrated.
SEVERITY_PROMPT = "high, medium or low?"


def onboarding_roadmap(today: date) -> Node:
    d = lambda weeks: due(today + timedelta(weeks=weeks))  # noqa: E731
    csm, champ = owner("CSM", "vendor"), owner("Customer champion", "customer")
    stage = lambda n, title, why, *items: [h(2, f"{n}. {title}"), p(why), tasks(*items)]  # noqa: E731
    return doc(
        h(1, "Customer onboarding roadmap"),
        p(
            "The path from signature to value, stage by stage. Each task has one owner and a date; "
            "tick it in the call when it is done, so both teams see the same progress."
        ),
        h(2, "Key contacts"),
        table(
            CONTACTS,
            ["", "Executive sponsor", "", "customer"],
            ["", "Champion", "", "customer"],
            ["", "Customer Success Manager", "", "vendor"],
        ),
        h(2, "Milestones"),
        tasks(
            task("Kick-off held and plan agreed", d(1)),
            task("Success criteria and KPIs signed off", d(3)),
            task("Go-live", d(8)),
            task("Onboarding wrap-up and first value review", d(12)),
        ),
        *stage(
            1,
            "Knowledge transfer",
            "Sales hands over everything promised and why they bought.",
            task("Internal hand-off: deal notes, promises, stakeholders", csm, d(0)),
            task("Share the hand-off summary with the customer to confirm it", csm, d(1)),
        ),
        *stage(
            2,
            "Alignment",
            "Agree who does what on both sides and how we meet.",
            task("Kick-off call with sponsor and champion", csm, d(1)),
            task("Agree meeting cadence and communication channel", champ, d(1)),
        ),
        *stage(
            3,
            "Expectation setting",
            "What onboarding covers, how long it takes, what we need.",
            task("Walk through this roadmap and adjust dates together", csm, d(1)),
        ),
        *stage(
            4,
            "Discovery of objectives",
            "The business outcomes, in the customer's words.",
            task("Interview the sponsor on the top three objectives", csm, d(2)),
        ),
        *stage(
            5,
            "Definition of success",
            "What success looks like at go-live and at renewal.",
            task("Write the success criteria into this plan", champ, d(3)),
        ),
        h(2, "Key results"),
        p("Agreed measures: baseline today, the target, and where we are now."),
        table(
            KEY_RESULTS,
            ["e.g. Weekly active users", "Today's figure", "The target", "", "users", ""],
            ["e.g. Time to first value", "", "The target", "", "days", ""],
        ),
        *stage(
            6,
            "KPI agreement",
            "Sign off the key results above and how they are measured.",
            task("Sponsor signs off the key results", champ, d(3)),
        ),
        *stage(
            7,
            "Account setup",
            "Accounts, single sign-on, integrations and data.",
            task("Provision the workspace and SSO", csm, d(4)),
            task("Connect the integrations and import data", champ, d(5)),
        ),
        *stage(
            8,
            "User training",
            "Role-based training so people can do their job in the tool.",
            task("Train admins", csm, d(6)),
            task("Train end users and share recordings", csm, d(7)),
        ),
        *stage(
            9,
            "Roll-out and go-live",
            "Switch the team over and retire the old way.",
            task("Go/no-go check with the champion", champ, d(8)),
        ),
        *stage(
            10,
            "Change management",
            "Make the new way the habit.",
            task("Announce the change internally and name local experts", champ, d(9)),
        ),
        *stage(
            11,
            "Wrap-up and feedback",
            "Close onboarding and agree what comes next.",
            task("Onboarding retrospective and survey", csm, d(12)),
        ),
        h(2, "Risks"),
        table(
            RISKS,
            [
                "e.g. Key people not available for training",
                SEVERITY_PROMPT,
                "Who watches it",
                "e.g. Book sessions in week 1; record every session",
            ],
        ),
    )


def success_plan_canvas(today: date) -> Node:
    d = lambda days: due(today + timedelta(days=days))  # noqa: E731
    return doc(
        h(1, "Success plan canvas"),
        p(
            "One page that says why the customer bought, what they want to achieve, and how both "
            "teams will know it is working."
        ),
        h(2, "Customer highlights"),
        table(
            CONTACTS,
            ["", "Executive sponsor", "", "customer"],
            ["", "Champion", "", "customer"],
            ["", "Customer Success Manager", "", "vendor"],
        ),
        p("Industry, size, why they chose us, and what is happening in their business this year."),
        h(2, "Objectives"),
        bullets("Objective 1, in the customer's words", "Objective 2", "Objective 3"),
        h(2, "Key challenges"),
        bullets("What stands in the way today", "What has been tried before and why it failed"),
        h(2, "Key benefits"),
        bullets("The benefit the sponsor will report upwards", "The benefit users will feel first"),
        h(2, "Milestones"),
        tasks(
            task("Objectives confirmed with the sponsor", d(14)),
            task("First objective reached", d(90)),
            task("Value review with the sponsor", d(120)),
        ),
        h(2, "Actions"),
        tasks(
            task("Confirm objectives and success criteria", owner("CSM", "vendor"), d(7)),
            task(
                "Share baseline figures for each measure",
                owner("Customer champion", "customer"),
                d(14),
            ),
        ),
        h(2, "Success criteria"),
        bullets("What must be true for the sponsor to call this a success"),
        h(2, "Measures of success"),
        table(KEY_RESULTS, ["", "", "", "", "", ""]),
    )


def joint_success_plan(today: date) -> Node:
    d = lambda days: due(today + timedelta(days=days))  # noqa: E731
    return doc(
        h(1, "Joint success plan"),
        p("Written and kept up by both teams. The customer holds the same copy we do."),
        h(2, "Key contacts"),
        table(
            CONTACTS,
            ["", "Executive sponsor", "", "customer"],
            ["", "Champion", "", "customer"],
            ["", "Power user", "", "customer"],
            ["", "Customer Success Manager", "", "vendor"],
            ["", "Support lead", "", "vendor"],
        ),
        h(2, "Desired outcomes"),
        bullets(
            "The business outcome the sponsor is measured on",
            "What changes for the team day to day",
        ),
        h(2, "Key results"),
        p("SMART: a metric, where it is today, where it should be, and by when."),
        table(
            KEY_RESULTS,
            ["e.g. Monthly revenue", "Today's figure", "The target", "", "USD", ""],
            ["e.g. Active users", "Today's figure", "The target", "", "users", ""],
        ),
        h(2, "Milestones"),
        tasks(
            task("Plan agreed by both sponsors", d(14)),
            task("Go-live", d(60)),
            task("First key result reached", d(120)),
            task("Renewal review", d(330)),
        ),
        h(2, "Actions"),
        tasks(
            task("Agree the key results and their baselines", owner("CSM", "vendor"), d(7)),
            task("Nominate power users", owner("Customer champion", "customer"), d(10)),
        ),
        h(2, "Risks"),
        table(
            RISKS,
            [
                "e.g. Executive sponsor changes role",
                SEVERITY_PROMPT,
                "Who watches it",
                "e.g. Build a second sponsor relationship early",
            ],
            [
                "e.g. Low adoption after go-live",
                SEVERITY_PROMPT,
                "Who watches it",
                "e.g. Weekly usage review for the first 8 weeks",
            ],
        ),
    )


def executive_business_review(today: date) -> Node:
    d = lambda days: due(today + timedelta(days=days))  # noqa: E731
    csm, sponsor = owner("CSM", "vendor"), owner("Executive sponsor", "customer")
    return doc(
        h(1, "Executive business review"),
        p(
            "Four questions: where are we on the journey, what is the next major milestone, are we "
            "doing the right things to reach it, and what do you need from us?"
        ),
        h(2, "Agenda"),
        bullets(
            "Introductions",
            "Restate objectives",
            "Review of past actions",
            "The success plan",
            "Benchmarks",
            "Insight",
            "Roadmap",
            "90-day go-forward plan",
        ),
        h(2, "Restate objectives"),
        bullets("Objective 1 and why it matters this year", "Objective 2"),
        h(2, "Review of past actions"),
        p("What we committed to at the last review, and what happened."),
        h(2, "Measures of success"),
        table(KEY_RESULTS, ["", "", "", "", "", ""]),
        h(2, "Benchmarks"),
        p("How the customer compares with peers of similar size and industry."),
        h(2, "Insight"),
        p("What the data shows that the customer may not see, and what we recommend."),
        h(2, "Roadmap"),
        p("What is coming in the product that matters for these objectives."),
        h(2, "Risks"),
        table(RISKS, ["", "", "", ""]),
        h(2, "90-day plan"),
        tasks(
            task("Send the review summary and this plan to attendees", csm, d(2)),
            task("Confirm priorities for the quarter with the leadership team", sponsor, d(14)),
            task("Deliver the first recommendation from the insight section", csm, d(30)),
            task("Mid-quarter check-in on the key results", csm, d(45)),
            task("Share updated figures for every measure", sponsor, d(60)),
            task("Prepare the next business review", csm, d(85)),
        ),
        h(2, "Milestones"),
        tasks(task("Next executive business review", d(90))),
    )


@dataclass(frozen=True)
class Template:
    id: str
    name: str
    description: str
    build: Callable[[date], Node]


BUILT_IN: dict[str, Template] = {
    t.id: t
    for t in (
        Template(
            "onboarding-roadmap",
            "Customer onboarding roadmap",
            "The onboarding playbook stage by stage, hand-off to wrap-up, with owners and dates.",
            onboarding_roadmap,
        ),
        Template(
            "success-plan-canvas",
            "Success plan canvas",
            "Highlights, objectives, challenges, benefits, milestones, success criteria, measures.",
            success_plan_canvas,
        ),
        Template(
            "joint-success-plan",
            "Joint success plan",
            "Key contacts, desired outcomes, key results, milestones and risks, shared with the "
            "customer.",
            joint_success_plan,
        ),
        Template(
            "executive-business-review",
            "Executive business review",
            "The review agenda, ending in a 90-day plan with owners and dates.",
            executive_business_review,
        ),
    )
}
