"""core.memo.RenderedMemo: a rendering is reused only while its source compares equal."""

from __future__ import annotations

from operator import itemgetter

from core.memo import RenderedMemo


def test_an_equal_source_reuses_the_rendering_and_a_changed_one_renders_again() -> None:
    memo: RenderedMemo[str] = RenderedMemo("test")
    calls: list[tuple[int, str]] = []

    def render(row: tuple[int, str]) -> str:
        calls.append(row)
        return f"{row[0]}:{row[1]}"

    first = memo.get("k", (1, "a"), lambda: render((1, "a")))
    again = memo.get("k", (1, "a"), lambda: render((1, "a")))
    changed = memo.get("k", (1, "b"), lambda: render((1, "b")))
    back = memo.get("k", (1, "a"), lambda: render((1, "a")))

    assert (first, again, changed, back) == ("1:a", "1:a", "1:b", "1:a")
    assert calls == [(1, "a"), (1, "b"), (1, "a")]  # only the repeat of an unchanged source was reused


def test_keys_do_not_share_renderings() -> None:
    memo: RenderedMemo[str] = RenderedMemo("test")

    assert memo.get("a", (1,), lambda: "A") == "A"
    assert memo.get("b", (1,), lambda: "B") == "B"


def test_the_memo_is_bounded_and_drops_its_oldest_entry() -> None:
    memo: RenderedMemo[int] = RenderedMemo("test", size=3)
    for key in range(5):
        memo.get(key, key, lambda key=key: key)  # type: ignore[misc]

    assert len(memo) == 3
    assert memo.get(0, 0, lambda: -1) == -1  # dropped: rendered again
    assert memo.get(4, 4, lambda: -1) == 4  # kept


def test_a_memo_over_its_size_comes_back_to_it_with_the_next_addition() -> None:
    """Two threads that drop the same oldest entry at once both add theirs: one over the size (the
    state made here directly). The next addition must not keep it over for the life of the process."""
    memo: RenderedMemo[int] = RenderedMemo("test", size=3)
    memo._entries.update({key: (key, key) for key in range(5)})

    memo.get("new", 0, lambda: 0)

    assert len(memo) == 3
    assert memo.get("new", 0, lambda: -1) == 0 and memo.get(4, 4, lambda: -1) == 4  # the newest are kept


def test_get_many_answers_each_source_in_order_as_get_would() -> None:
    memo: RenderedMemo[str] = RenderedMemo("test")
    calls: list[tuple[int, str]] = []

    def render(row: tuple[int, str]) -> str:
        calls.append(row)
        return f"{row[0]}:{row[1]}"

    memo.get(2, (2, "b"), lambda: "2:b")
    memo.get(3, (3, "old"), lambda: "3:old")
    rows = [(1, "a"), (2, "b"), (3, "c"), (1, "a")]

    assert memo.get_many(rows, itemgetter(0), render) == ["1:a", "2:b", "3:c", "1:a"]
    assert calls == [(1, "a"), (3, "c")]  # 2 was remembered, 3 had changed, the second 1 was just made
    assert memo.get_many([], itemgetter(0), render) == []
