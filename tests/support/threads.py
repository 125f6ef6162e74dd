"""Running a test's target in several threads at once."""

import threading


def in_threads(n: int, target, timeout: float = 60) -> tuple:
    """``target(i)`` for ``i`` in ``range(n)``, each in its own thread, started together (at a
    barrier) so that they overlap; returns ``(results, errors)``: the results by ``i`` (None where
    it raised) and what was raised, BaseException included (a failed assert or pytest.fail in a
    thread).  A thread still alive after ``timeout`` seconds fails the test (a hang)."""
    results, errors, start = [None] * n, [], threading.Barrier(n)

    def run(i):
        start.wait(10)
        try:
            results[i] = target(i)
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "a thread did not finish"
    return results, errors
