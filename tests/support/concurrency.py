"""Run work in parallel threads on real PostgreSQL: each thread has its own database connection,
and a barrier releases them together."""

import threading
from collections.abc import Callable
from typing import Any

from django.db import connection


def in_parallel(count: int, work: Callable[[int], Any]) -> tuple[list[Any], list[BaseException]]:
    """`work(n)` for n in range(count), all at once; returns the results and the errors."""
    barrier = threading.Barrier(count)
    lock = threading.Lock()
    results: list[Any] = []
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            barrier.wait()
            result = work(n)
            with lock:
                results.append(result)
        except BaseException as error:
            with lock:
                errors.append(error)
        finally:
            connection.close()  # each thread had its own connection

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors
