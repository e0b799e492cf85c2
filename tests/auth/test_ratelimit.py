"""The failed-login window, pure: the test passes the time."""
from __future__ import annotations

from screenpop.auth.ratelimit import FailureWindow


def test_blocks_after_limit_until_the_oldest_failure_leaves_the_window():
    window = FailureWindow(limit=3, window=60)
    for t in (0, 10, 20):
        assert window.retry_after("ip", t) is None
        window.fail("ip", t)
    assert window.retry_after("ip", 30) == 30  # the failure at 0 leaves at 60
    assert window.retry_after("other", 30) is None
    assert window.retry_after("ip", 60) is None  # one slot free again
    window.fail("ip", 60)
    assert window.retry_after("ip", 61) == 9


def test_clear_and_old_failures_are_forgotten():
    window = FailureWindow(limit=2, window=10)
    window.fail("a", 0)
    window.fail("a", 1)
    window.clear("a")
    assert window.retry_after("a", 2) is None
    window.fail("b", 0)
    assert window.retry_after("b", 100) is None and "b" not in window._hits


def test_memory_is_bounded_under_a_spray_of_names():
    window = FailureWindow(limit=1, window=60, max_keys=100)
    for i in range(1000):
        window.fail(f"name{i}", 0)
    assert len(window._hits) == 100 and window.retry_after("name999", 1) is not None
