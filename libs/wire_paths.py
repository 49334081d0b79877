"""Which field of a request's wire bytes broke parsing, so the INVALID_ARGUMENT names it (not just `request`).

protobuf's parser says only that a message is invalid. The usual cause a client can fix is a string field whose
bytes are not UTF-8 (proto3 requires it; C++, Go and Java clients can still send such bytes). This walks the wire
format with the method's descriptor and returns that field's path, e.g. `events[3].product_id`.
"""
from __future__ import annotations

from collections import Counter

from google.protobuf.descriptor import Descriptor, FieldDescriptor

MAX_DEPTH = 100  # protobuf's own recursion limit


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]  # IndexError on truncation: the caller stops looking
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def non_utf8_field(desc: Descriptor, raw: bytes, prefix: str = "", depth: int = 0) -> str | None:
    """The path of the first string field (at any depth) whose bytes are not UTF-8; None if none is found."""
    seen: Counter = Counter()
    pos = 0
    try:
        while pos < len(raw):
            key, pos = _varint(raw, pos)
            wire_type = key & 7
            if wire_type == 0:
                _, pos = _varint(raw, pos)
            elif wire_type in (1, 5):
                pos += 8 if wire_type == 1 else 4
            elif wire_type == 2:
                length, pos = _varint(raw, pos)
                chunk, pos = raw[pos:pos + length], pos + length
                fd = desc.fields_by_number.get(key >> 3)
                if fd is None:
                    continue
                path = prefix + fd.name
                if fd.is_repeated:
                    path += f"[{seen[fd.number]}]"
                    seen[fd.number] += 1
                if fd.type == FieldDescriptor.TYPE_STRING:
                    chunk.decode("utf-8")
                elif fd.type == FieldDescriptor.TYPE_MESSAGE and depth < MAX_DEPTH:
                    if found := non_utf8_field(fd.message_type, chunk, path + ".", depth + 1):
                        return found
            else:
                return None  # groups: nothing a current client sends; the caller names `request`
    except UnicodeDecodeError:
        return path
    except IndexError:
        return None
    return None
