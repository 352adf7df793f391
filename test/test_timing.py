"""Side-by-side timing (`mlirforge.timing`): what every speed figure we print rests on."""

from __future__ import annotations

from collections import Counter

from mlirforge.timing import interleaved_times


def test_rounds_rotate_so_no_function_always_follows_the_same_one():
    order: list[str] = []
    fns = [lambda name=name: order.append(name) for name in "ABC"]
    samples = interleaved_times(fns, rounds=6, inner=1, warmup=0)
    assert [len(s) for s in samples] == [6, 6, 6]
    rounds = ["".join(order[i:i + 3]) for i in range(0, 18, 3)]
    assert rounds == ["ABC", "BCA", "CAB", "ABC", "BCA", "CAB"]
    after = Counter((a, b) for a, b in zip(order, order[1:]))
    assert after[("A", "B")] == after[("B", "C")] and after[("C", "A")] >= 3
    assert {b for a, b in after if a == "A"} == {"B", "C"}  # with a fixed order A was always followed by B
