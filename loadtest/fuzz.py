"""Hostile requests generated from the proto descriptors: every field of a method's request message, by type.

The wire bytes are built by hand (not through the Python message API) so that they can carry what a real client
in another language can send and Python's API refuses to build: strings that are not UTF-8, negative or unknown
enum values, out-of-range Timestamps, oversized and empty values, thousands of repeated elements. Each request
also records which fields got a hostile value, so a bad status can be traced to its field.
"""
from __future__ import annotations

import base64
import random
import struct
from dataclasses import dataclass, field

from google.protobuf.descriptor import Descriptor, FieldDescriptor

# Bounded below gRPC's 4 MiB message limit: oversized-but-receivable values are what the edge must judge.
MAX_STRING = 100_000
MAX_REPEATED = 600
VALID_USERS = ("17850", "13047", "12583", "14688", "15311", "999999")  # known customers and one unknown
VALID_PRODUCTS = ("85123A", "71053", "84406B", "22423", "NOPE")
VALID_TEXT = ("lantern", "white metal lantern", "tea cup", "a", "christmas lights")

F = FieldDescriptor


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negatives are ten-byte two's complement on the wire
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _tag(number: int, wire_type: int) -> bytes:
    return _varint(number << 3 | wire_type)


def _delimited(number: int, payload: bytes) -> bytes:
    return _tag(number, 2) + _varint(len(payload)) + payload


def _signed_token_lookalike(rng: random.Random) -> str:
    body = rng.choice([b"[" * 50_000, b'{"v":"gnn_only"}', b"\xff\xfe", b"{}"])
    return base64.urlsafe_b64encode(body).decode().rstrip("=") + rng.choice(["", ".", ".AAAA", "." + "A" * 22])


def hostile_string(rng: random.Random, name: str) -> tuple[bytes, bool]:
    """(UTF-8 or raw bytes, whether the value is hostile) for a string field called `name`."""
    valid = {"user_id": VALID_USERS, "product_id": VALID_PRODUCTS, "query": VALID_TEXT}.get(name)
    if valid and rng.random() < 0.35:
        return rng.choice(valid).encode(), False
    if name == "event_id" and rng.random() < 0.35:
        return f"e{rng.getrandbits(64):x}".encode(), False
    choice = rng.randrange(12)
    if choice == 0:
        return b"", True
    if choice == 1:
        return b"\xff\xfe\xc3\x28" * rng.randint(1, 8), True  # not UTF-8
    if choice == 2:
        return ("x" * rng.choice([65, 257, 513, 4096, MAX_STRING])).encode(), True
    if choice == 3:
        return ("\u00e9\u202e\U0001f600" * rng.randint(1, 200)).encode(), True  # accents, RTL override, emoji
    if choice == 4:
        return b"\x00" * rng.randint(1, 64), True
    if choice == 5:
        return rng.choice(["17850.0", "-1", "1" * 17, "0" * 16, " 17850 ", "١٢٣"]).encode(), True
    if choice == 6:
        return _signed_token_lookalike(rng).encode(), True
    if choice == 7:
        return rng.choice(["' OR 1=1 --", "%s%n", "../../etc/passwd", "${jndi:ldap://x}"]).encode(), True
    if choice == 8:
        return " \t\n\r " .encode() * rng.randint(1, 100), True
    if choice == 9:
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 64))), True  # random bytes
    if choice == 10:
        return ("\ud7ff" + "a" * rng.randint(0, 600)).encode(), True
    return rng.choice(VALID_TEXT).encode(), False


INT_EDGES = (0, -1, 1, 2**31 - 1, -(2**31), 2**63 - 1, -(2**63), 7, 100, 101, 501)


@dataclass
class Hostile:
    """One generated request: wire bytes and the dotted paths of the fields that got a hostile value."""

    payload: bytes
    hostile_fields: list[str] = field(default_factory=list)
    user_ids: set[str] = field(default_factory=set)


def _scalar(fd: FieldDescriptor, rng: random.Random, path: str, out: Hostile) -> bytes:
    n = fd.number
    if fd.type == F.TYPE_STRING or fd.type == F.TYPE_BYTES:
        raw, hostile = hostile_string(rng, fd.name)
        if hostile:
            out.hostile_fields.append(path)
        elif fd.name == "user_id":
            out.user_ids.add(raw.decode())
        return _delimited(n, raw)
    if fd.type == F.TYPE_ENUM:
        known = [v.number for v in fd.enum_type.values]
        value = rng.choice(known) if rng.random() < 0.5 else rng.choice([-1, 99, 2**31 - 1, -(2**31)])
        if value not in known or value == 0:
            out.hostile_fields.append(path)
        return _tag(n, 0) + _varint(value)
    if fd.type == F.TYPE_BOOL:
        return _tag(n, 0) + _varint(rng.choice([0, 1, 2, 2**40]))  # any non-zero varint reads as true
    if fd.type in (F.TYPE_DOUBLE, F.TYPE_FLOAT):
        value = rng.choice([0.0, -1.0, 1.5, float("nan"), float("inf"), -float("inf"), 1e308])
        out.hostile_fields.append(path)
        return _tag(n, 1) + struct.pack("<d", value) if fd.type == F.TYPE_DOUBLE else \
            _tag(n, 5) + struct.pack("<f", value if abs(value) < 3e38 else float("inf"))
    # Every integer type shares the varint wire type in these protos (no fixed/sint fields).
    value = rng.choice(INT_EDGES)
    if value < 0 or value > 500:
        out.hostile_fields.append(path)
    return _tag(n, 0) + _varint(value)


def _message(desc: Descriptor, rng: random.Random, path: str, out: Hostile, depth: int,
             skip: frozenset[str] = frozenset()) -> bytes:
    chunks = []
    for fd in desc.fields:
        if fd.full_name in skip or rng.random() < 0.25:
            continue  # unset: required fields missing are hostile too
        sub = f"{path}.{fd.name}" if path else fd.name
        count = 1
        if fd.is_repeated:
            count = rng.choice([0, 1, 2, 5, rng.randint(1, 40), MAX_REPEATED]) if depth == 0 else rng.randint(0, 3)
        for i in range(count):
            at = f"{sub}[{i}]" if fd.is_repeated else sub
            if fd.type == F.TYPE_MESSAGE:
                if count > 50:  # many elements: keep each small, so the request stays under 4 MiB
                    body = _small_message(fd.message_type, rng, at, out)
                else:
                    body = _message(fd.message_type, rng, at, out, depth + 1, skip)
                chunks.append(_delimited(fd.number, body))
            else:
                chunks.append(_scalar(fd, rng, at, out))
    if desc.full_name == "google.protobuf.Timestamp" and rng.random() < 0.5:
        seconds = rng.choice([-(2**62), 2**62, -62_135_596_801, 253_402_300_800])
        out.hostile_fields.append(path)
        return _tag(1, 0) + _varint(seconds) + _tag(2, 0) + _varint(rng.choice([-1, 10**9, 0]))
    return b"".join(chunks)


def _small_message(desc: Descriptor, rng: random.Random, path: str, out: Hostile) -> bytes:
    chunks = []
    for fd in desc.fields:
        if fd.type == F.TYPE_STRING:
            raw = rng.choice([b"", b"\xff", b"x" * 70, rng.choice(VALID_PRODUCTS).encode()])
            out.hostile_fields.append(f"{path}.{fd.name}")
            chunks.append(_delimited(fd.number, raw))
    return b"".join(chunks)


def hostile_request(desc: Descriptor, rng: random.Random, skip: frozenset[str] = frozenset()) -> Hostile:
    """`skip`: full names of fields to leave unset (e.g. one whose validation another change owns)."""
    out = Hostile(b"")
    out.payload = _message(desc, rng, "", out, 0, skip)
    return out
