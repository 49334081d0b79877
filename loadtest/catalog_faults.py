"""The catalogue phases of `make chaos`, measured through the gateway as a catalogue team and shoppers see it:

- catalog-down: the catalogue's PostgreSQL database refuses every connection (ALLOW_CONNECTIONS false, its sessions
  terminated) for a while under a closed loop of Search/Recommend. Reads keep answering from each replica's last
  read copy, flagged STAGE_CATALOG; writes are UNAVAILABLE with RetryInfo and nothing of them is stored; then the
  database is let back and the recovery is timed from that moment (first acknowledged write, first unflagged
  answer, a product written after it searchable).
- write-kill: kill -9 of the gateway right after acknowledged UpsertProducts (writers still in flight), restarted at
  once, many times; afterwards every acknowledged product must read back as sent.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections import Counter

import grpc
import psycopg
from google.rpc import error_details_pb2, status_pb2
from google.type import money_pb2
from psycopg import sql
from shop.catalog.v1 import catalog_service_pb2 as pb
from shop.catalog.v1 import catalog_service_pb2_grpc as pb_grpc
from shop.common.v1 import common_pb2 as cpb
from shop.gateway.v1 import gateway_service_pb2 as gpb
from shop.gateway.v1 import gateway_service_pb2_grpc as gpb_grpc

from libs.stack import Stack, wait_healthy
from loadtest.faults import Loop
from loadtest.suite import Figure

CATALOG = cpb.STAGE_CATALOG


# ------------------------------------------------------------------------------------------ PostgreSQL control
def database_name(dsn: str) -> str:
    return psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]


def refuse(admin_url: str, name: str) -> None:
    """The database down as its clients see it: no new connection accepted, every open one cut."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(sql.Identifier(name)))
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))


def admit(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true").format(sql.Identifier(name)))


# ------------------------------------------------------------------------------------------ calls
def write_metadata(stack: Stack) -> tuple:
    """The catalogue write token of the stack, if it has one (writes are privileged)."""
    token = stack.env.get("SHOP_CATALOG_WRITE_TOKEN")
    return (("authorization", f"Bearer {token}"),) if token else ()


def _product(pid: str, title: str) -> pb.Product:
    return pb.Product(
        product_id=pid,
        title=title,
        price=money_pb2.Money(currency_code="GBP", units=3, nanos=500_000_000),
        availability=cpb.AVAILABILITY_IN_STOCK,
    )


def _word() -> str:
    """A title word no product has, so a Search for it finds only the product written with it."""
    return "zq" + uuid.uuid4().hex[:8]


def has_retry_info(exc: grpc.aio.AioRpcError) -> bool:
    raw = dict(exc.trailing_metadata() or ()).get("grpc-status-details-bin", b"")
    return bool(raw) and any(
        d.Is(error_details_pb2.RetryInfo.DESCRIPTOR) for d in status_pb2.Status.FromString(raw).details
    )


async def _code(call) -> tuple[str, object]:
    """(status code name, response or the error)."""
    try:
        return "OK", await call
    except grpc.aio.AioRpcError as exc:
        return exc.code().name, exc


def _flagged(resp) -> bool:
    return any(x.stage == CATALOG for x in resp.degradations)


async def _wait_for(predicate, timeout_s: float, interval_s: float = 0.05) -> float | None:
    """Monotonic time at which the async `predicate` first held, or None after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await predicate():
            return time.monotonic()
        await asyncio.sleep(interval_s)
    return None


# ------------------------------------------------------------------------------------------ catalog-down
async def catalog_down(
    stack: Stack, admin_url: str, database: str, outage_s: float = 8.0, timeout_s: float = 60.0
) -> tuple[list[Figure], dict]:
    """`database`: the name of the stack's catalogue database (SHOP_CATALOG_DSN) on the server of `admin_url`."""
    meta = write_metadata(stack)
    known_word, lost_word = _word(), _word()
    known = _product(f"D-{uuid.uuid4().hex[:10]}", f"{known_word.upper()} ENAMEL LANTERN")
    refused = [_product(f"D-{uuid.uuid4().hex[:10]}", f"{lost_word.upper()} TIN {i}") for i in range(3)]
    loop = Loop(stack.addresses["gateway"])
    details: dict = {}
    async with grpc.aio.insecure_channel(stack.addresses["gateway"]) as channel:
        catalog, gateway = pb_grpc.CatalogServiceStub(channel), gpb_grpc.GatewayServiceStub(channel)

        async def found(word: str) -> bool:
            code, resp = await _code(gateway.Search(gpb.SearchRequest(query=word, page_size=5), timeout=5))
            return code == "OK" and any(word.upper() in r.product.title for r in resp.results)

        await catalog.UpsertProducts(pb.UpsertProductsRequest(products=[known]), metadata=meta, timeout=10)
        await _wait_for(lambda: found(known_word), 10)  # part of every replica's last known catalogue
        task = asyncio.ensure_future(loop.closed())
        await asyncio.sleep(2.0)
        down_at = time.monotonic()
        refuse(admin_url, database)
        # Every replica's poll fails within the pool's timeout (2 s); then the reads answer from the copies.
        await asyncio.sleep(3.0)
        get_code, got = await _code(catalog.GetProduct(pb.GetProductRequest(product_id=known.product_id), timeout=10))
        list_code, page = await _code(catalog.ListProducts(pb.ListProductsRequest(page_size=50), timeout=10))
        search_found = await found(known_word)
        writes = []
        for rpc, request in (
            (catalog.UpsertProducts, pb.UpsertProductsRequest(products=refused)),
            (catalog.DeleteProducts, pb.DeleteProductsRequest(product_ids=[known.product_id])),
        ):
            start = time.monotonic()
            code, err = await _code(rpc(request, metadata=meta, timeout=10))
            writes.append((code, code == "UNAVAILABLE" and has_retry_info(err), round(time.monotonic() - start, 2)))
        await asyncio.sleep(max(0.0, outage_s - (time.monotonic() - down_at)))
        back_at = time.monotonic()
        admit(admin_url, database)
        after_word = _word()
        after = _product(f"D-{uuid.uuid4().hex[:10]}", f"{after_word.upper()} ENAMEL LANTERN")

        async def write_ok() -> bool:
            code, _ = await _code(
                catalog.UpsertProducts(pb.UpsertProductsRequest(products=[after]), metadata=meta, timeout=10)
            )
            return code == "OK"

        acked_at = await _wait_for(write_ok, timeout_s, 0.1)
        searchable_at = await _wait_for(lambda: found(after_word), timeout_s) if acked_at else None

        def unflagged_at() -> float | None:
            return min(
                (s.end for s in loop.samples if s.start > back_at and s.code == "OK" and "CATALOG" not in s.stages),
                default=None,
            )

        async def unflagged() -> bool:
            return unflagged_at() is not None

        await _wait_for(unflagged, timeout_s, 0.2)
        loop.stop.set()
        await task
        stored = [
            (await _code(catalog.GetProduct(pb.GetProductRequest(product_id=p.product_id), timeout=10)))[0]
            for p in refused
        ]
        kept_code, kept = await _code(catalog.GetProduct(pb.GetProductRequest(product_id=known.product_id), timeout=10))
    during = [s for s in loop.samples if down_at <= s.start < back_at]
    bad = Counter(s.code for s in during if s.code != "OK")
    flagged = sum("CATALOG" in s.stages for s in during)

    def since_back(t: float | None) -> float | None:
        return None if t is None else round(t - back_at, 2)

    steps = {
        "first acknowledged write": since_back(acked_at),
        "first unflagged answer": since_back(unflagged_at()),
        "product written then searchable": since_back(searchable_at),
    }
    reads_flagged = (
        get_code == "OK"
        and _flagged(got)
        and got.product.title == known.title
        and list_code == "OK"
        and _flagged(page)
        and len(page.products) == 50
    )
    writes_refused = sum(ok for _, ok, _ in writes)
    figures = [
        Figure(
            f"catalogue db down {outage_s:.0f} s: Search/Recommend answers not OK",
            f"{sum(bad.values())} {dict(bad)} of {len(during)}",
            "0",
            not bad and len(during) > 0,
        ),
        Figure("catalogue db down: answers flagged STAGE_CATALOG", f"{flagged} of {len(during)}", "> 0", flagged > 0),
        Figure(
            "catalogue db down: GetProduct / ListProducts / Search serve the last copy, flagged",
            f"{get_code} / {list_code} / found={search_found}",
            "OK flagged / OK flagged / found",
            reads_flagged and search_found,
        ),
        Figure(
            "catalogue db down: Upsert / Delete answered UNAVAILABLE + RetryInfo (s to answer)",
            " / ".join(f"{c}{'+RetryInfo' if ok else ''} ({s})" for c, ok, s in writes),
            "both",
            writes_refused == len(writes),
        ),
        Figure(
            "catalogue db back: refused writes found stored / refused delete applied",
            f"{sum(c == 'OK' for c in stored)} of {len(stored)} / "
            f"{kept_code == 'OK' and kept.product.availability != cpb.AVAILABILITY_IN_STOCK}",
            "0 / False",
            stored == ["NOT_FOUND"] * len(stored)
            and kept_code == "OK"
            and kept.product.availability == cpb.AVAILABILITY_IN_STOCK,
        ),
        Figure(
            "catalogue db back: recovery, s after it is back",
            " -> ".join(f"{k} {v}" for k, v in steps.items()),
            "write <= 5, searchable <= write + 2",
            None not in steps.values()
            and steps["first acknowledged write"] <= 5.0
            and steps["product written then searchable"] <= steps["first acknowledged write"] + 2.0,
        ),
    ]
    details.update(
        codes=dict(Counter(s.code for s in during)),
        flagged=flagged,
        writes=writes,
        recovery_s=steps,
        answers_after_back=len([s for s in loop.samples if s.start >= back_at]),
    )
    return figures, details


# ------------------------------------------------------------------------------------------ write-kill
def restart_gateway(stack: Stack, timeout_s: float = 120.0) -> float:
    """kill -9 the gateway and start it again at once (as the supervisor's first restart does); seconds until it is
    SERVING. Under the stack's lock, so a supervisor running beside it never sees the dead process."""
    with stack.lock:
        victim = stack.processes["gateway"]
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        killed_at = time.monotonic()
        proc = stack.start_service("gateway")
    wait_healthy(stack.addresses["gateway"], timeout_s, proc)
    return time.monotonic() - killed_at


async def write_kill(
    stack: Stack, label: str, kills: int = 5, per_kill: int = 40, writers: int = 4, timeout_s: float = 120.0
) -> tuple[list[Figure], dict]:
    """`kills` rounds: `writers` concurrent callers upsert one new product per call; when `per_kill` of the round are
    acknowledged the gateway is killed with SIGKILL (the others' calls in flight), then restarted. Afterwards every
    acknowledged product must read back with the title it was written with."""
    meta = write_metadata(stack)
    run = uuid.uuid4().hex[:6]
    acked: dict[str, str] = {}
    unacked: list[str] = []
    restart_s: list[float] = []
    n = 0
    for _ in range(kills):
        round_acked = 0
        enough = asyncio.Event()

        async def writer(channel) -> None:
            nonlocal n, round_acked
            stub = pb_grpc.CatalogServiceStub(channel)
            while not enough.is_set():
                n += 1
                pid, title = f"K{run}-{n}", f"KILL TEST {run} {n} MUG"
                code, _ = await _code(
                    stub.UpsertProducts(
                        pb.UpsertProductsRequest(products=[_product(pid, title)]), metadata=meta, timeout=10
                    )
                )
                if code != "OK":
                    unacked.append(pid)
                    return  # the gateway is gone
                acked[pid] = title
                round_acked += 1
                if round_acked >= per_kill:
                    enough.set()

        async with grpc.aio.insecure_channel(stack.addresses["gateway"]) as channel:
            tasks = [asyncio.ensure_future(writer(channel)) for _ in range(writers)]
            await enough.wait()
            # Right after the ack, with the other writers' calls in flight.
            restart_s.append(await asyncio.to_thread(restart_gateway, stack, timeout_s))
            await asyncio.gather(*tasks)
    lost, changed = [], []
    async with grpc.aio.insecure_channel(stack.addresses["gateway"]) as channel:
        stub = pb_grpc.CatalogServiceStub(channel)
        for pid, title in acked.items():
            code, resp = await _code(stub.GetProduct(pb.GetProductRequest(product_id=pid), timeout=10))
            if code != "OK":
                lost.append(pid)
            elif resp.product.title != title:
                changed.append(pid)
        unacked_stored = 0
        for pid in unacked:
            code, _ = await _code(stub.GetProduct(pb.GetProductRequest(product_id=pid), timeout=10))
            unacked_stored += code == "OK"
    figures = [
        Figure(
            f"kill -9 gateway after acknowledged writes ({label}): acknowledged writes lost or changed after restart",
            f"{len(lost) + len(changed)} of {len(acked)} ({kills} kills)",
            "0",
            not lost and not changed and len(acked) >= kills * per_kill,
        ),
    ]
    return figures, {
        "acked": len(acked),
        "lost": lost[:20],
        "changed": changed[:20],
        "in_flight_at_kill": len(unacked),
        "in_flight_stored": unacked_stored,
        "restart_to_serving_s": [round(s, 2) for s in restart_s],
    }
