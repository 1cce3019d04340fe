"""How a commitment-history event is said in a sentence ("Dana *moved the date of* a *key
result*"): one wording for the History page and the weekly digest."""

from __future__ import annotations

# By event kind: what the person did.
CHANGE_VERBS = {
    "created": "added",
    "removed": "removed",
    "text_changed": "reworded",
    "reassigned": "reassigned",
    "due_moved": "moved the date of",
    "completed": "completed",
    "reopened": "reopened",
    "status_changed": "changed the status of",
    "milestone_changed": "changed the milestone flag of",
    "kr_value_changed": "updated the current value of",
    "risk_severity_changed": "changed the severity of",
    "field_changed": "edited",
}
# By entity: what they did it to.
ENTITY_NAMES = {"task": "task", "key_result": "key result", "risk": "risk", "contact": "contact"}
