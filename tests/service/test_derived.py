"""The cache of what the store derives from ``deals``: one revision at a time, never an older one's value."""

from __future__ import annotations

from dealscore_service.store.derived import DerivedCache


def test_a_value_is_served_only_under_the_revision_it_was_computed_after() -> None:
    cache = DerivedCache()
    cache.put(5, "totals", "at 5")
    assert cache.get(5, "totals") == "at 5" and cache.get(5, "other") is None
    assert cache.get(6, "totals") is None  # a deal changed: recompute
    assert cache.get(5, "totals") is None  # and the old value is gone, even for a request that read 5 earlier
    cache.put(5, "totals", "late, at 5")  # a slow request that read 5 before 6 was committed: not kept
    assert cache.get(6, "totals") is None and cache.get(5, "totals") is None
    cache.put(6, "totals", "at 6")
    assert cache.get(6, "totals") == "at 6"
    cache.put(None, "x", 1)  # no revision row: nothing is kept
    assert cache.get(None, "x") is None


def test_the_least_recently_used_values_go_first() -> None:
    cache = DerivedCache(size=2)
    cache.put(1, "a", 1)
    cache.put(1, "b", 2)
    assert cache.get(1, "a") == 1
    cache.put(1, "c", 3)
    assert (cache.get(1, "a"), cache.get(1, "b"), cache.get(1, "c")) == (1, None, 3)


def test_a_value_may_outlive_its_revision_only_while_younger_than_max_age() -> None:
    now = [100.0]
    cache = DerivedCache(max_age=1.0, clock=lambda: now[0])
    cache.put(5, "totals", "at 5")
    now[0] = 100.9
    assert cache.get(7, "totals") == "at 5"  # two writes since, but under a second old
    cache.put(5, "late", "at 5")  # computed under a revision older than the newest seen: not kept
    assert cache.get(7, "late") is None
    now[0] = 101.2
    assert cache.get(7, "totals") is None  # too old now: recompute
    cache.put(7, "totals", "at 7")
    assert cache.get(6, "totals") == "at 7"  # a request that read an older revision gets the newer value
    now[0] = 500.0
    assert cache.get(7, "totals") == "at 7"  # the revision has not moved: exact however old


def test_clearing_after_a_change_also_refuses_values_still_in_flight_from_before_it() -> None:
    now = [0.0]
    cache = DerivedCache(max_age=10.0, clock=lambda: now[0])
    cache.put(3, "totals", "at 3")
    cache.clear(4)  # this process closed a deal, committed as revision 4
    assert cache.get(4, "totals") is None
    cache.put(3, "totals", "computed from 3 by a request in flight")
    assert cache.get(4, "totals") is None
