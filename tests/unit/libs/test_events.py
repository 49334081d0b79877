import threading

from libs.domain import EventKind, RecordedEvent, UserEvent
from libs.events import EventStore


def _event(event_id: str, user: str = "17850", product: str = "85123A", ts: float = 100.0,
           kind: EventKind = EventKind.PURCHASE) -> RecordedEvent:
    return RecordedEvent(event_id, user, UserEvent(product, kind, ts, 1), "tok", "fused")


def test_append_is_idempotent_on_event_id(tmp_path):
    store = EventStore(tmp_path / "e.sqlite3")
    assert store.append([_event("a"), _event("b")]) == (2, 0)
    assert store.append([_event("a"), _event("c")]) == (1, 1)
    assert len(store.read_purchases()) == 3


def test_events_survive_reopening(tmp_path):
    path = tmp_path / "e.sqlite3"
    store = EventStore(path)
    store.append([_event("a", ts=5.0)])
    store.close()
    again = EventStore(path)
    assert again.recent("17850") == [UserEvent("85123A", EventKind.PURCHASE, 5.0, 1)]


def test_recent_returns_newest_purchases_oldest_first_and_filters_kinds(tmp_path):
    store = EventStore(tmp_path / "e.sqlite3")
    store.append([_event(str(i), ts=float(i)) for i in range(5)]
                 + [_event("click", ts=9.0, kind=EventKind.CLICK), _event("other", user="1", ts=3.0)])
    recent = store.recent("17850", limit=3)
    assert [e.ts for e in recent] == [2.0, 3.0, 4.0]
    assert store.recent("404") == []


def test_concurrent_appends_lose_nothing(tmp_path):
    store = EventStore(tmp_path / "e.sqlite3")

    def writer(prefix: str) -> None:
        for i in range(50):
            store.append([_event(f"{prefix}{i}")])

    threads = [threading.Thread(target=writer, args=(p,)) for p in "xyz"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.read_purchases()) == 150
