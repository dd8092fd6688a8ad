"""Event ids: 26-char ULIDs, strictly increasing, carrying their creation time."""

from __future__ import annotations

import threading
import time
from itertools import pairwise

from hyperhive.ids import id_time_ms, is_id, new_id


def test_an_id_is_a_26_char_ulid() -> None:
    value = new_id()
    assert len(value) == 26
    assert is_id(value)


def test_ids_strictly_increase_across_10k_calls_in_a_tight_loop() -> None:
    ids = [new_id() for _ in range(10_000)]
    bad = [(a, b) for a, b in pairwise(ids) if not a < b]
    assert not bad, f"{len(bad)} ids out of order, first {bad[0]}"


def test_ids_made_on_several_threads_are_unique() -> None:
    made: list[list[str]] = [[] for _ in range(4)]

    def work(out: list[str]) -> None:
        out.extend(new_id() for _ in range(2_500))

    threads = [threading.Thread(target=work, args=(out,)) for out in made]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for out in made for i in out]
    assert len(set(every)) == len(every) == 10_000
    for out in made:
        assert out == sorted(out)


def test_an_ids_time_is_within_a_few_ms_of_now() -> None:
    before = time.time_ns() // 1_000_000
    value = new_id()
    after = time.time_ns() // 1_000_000
    assert before - 5 <= id_time_ms(value) <= after + 5


def test_is_id_refuses_what_new_id_never_makes() -> None:
    value = new_id()
    assert not is_id(value.lower())
    assert not is_id(value[:-1])
    assert not is_id(value + "0")
    assert not is_id("8" + value[1:])  # beyond 48 bits of milliseconds
    assert not is_id(value[:-1] + "U")  # not in Crockford's alphabet
