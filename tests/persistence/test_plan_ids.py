"""Plan ids are safe to pass on a command line."""

from __future__ import annotations

from persistence.plans import new_plan_id


def test_no_plan_id_starts_with_a_dash() -> None:
    # One token in 64 starts with "-", which `tandem plans rebuild <id>` read as an option: CI
    # met one. 5,000 ids would hold about 78 of them.
    ids = [new_plan_id() for _ in range(5000)]
    assert not [i for i in ids if i.startswith("-")]
    assert all(len(i) == 12 for i in ids) and len(set(ids)) == len(ids)
