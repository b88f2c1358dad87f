#!/usr/bin/env python3
"""Capture golden request/response frames from real brokers into tests/golden/.

Run with the venv python (it needs pykafka, confluent-kafka and the codecs):

    "$GRETE_PYTHON" scripts/capture_golden.py [--only kafka09|tansu]

It RESTARTS the brokers it uses (scripts/kafka09 single cluster, scripts/tansu)
so topics and offsets start from scratch, writes the data with kcat, PyKafka
2.8.0 and confluent-kafka, then speaks the protocol itself over raw sockets
(requests built by hand with struct.pack) and saves every frame WITHOUT its
4-byte size prefix:

    tests/golden/<broker>-<api>-v<version>-<what>.request.bin
    tests/golden/<broker>-<api>-v<version>-<what>.response.bin

Each fetched response is decoded here again (independently of grete) and
checked against what was written; tests/golden/manifest.json records, per
capture, the topic and the expected records. Brokers it started are stopped
again at the end. The normal test run never calls this script.
"""

import argparse
import gzip
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "golden")
CLIENT_ID = b"grete-golden"


def load_env():
    out = subprocess.run(
        ["bash", "-c", 'source "$1/scripts/env.sh" && env -0', "_", ROOT],
        check=True, capture_output=True).stdout
    env = {}
    for item in out.split(b"\0"):
        if b"=" in item:
            k, v = item.split(b"=", 1)
            env[k.decode()] = v.decode()
    return env


ENV = load_env()


T0 = time.time()


def log(*a):
    print("[%5.1fs]" % (time.time() - T0), *a, file=sys.stderr, flush=True)


def sh(*args, stdin=None, check=True):
    return subprocess.run(list(args), input=stdin, check=check, capture_output=True)


def hostport(s):
    h, p = s.split(",")[0].rsplit(":", 1)
    return h, int(p)


# ------------------------------------------------------------------ encoding
def i8(v): return struct.pack(">b", v)
def i16(v): return struct.pack(">h", v)
def i32(v): return struct.pack(">i", v)
def i64(v): return struct.pack(">q", v)
def u32(v): return struct.pack(">I", v)


def string(s):
    if s is None:
        return i16(-1)
    b = s.encode() if isinstance(s, str) else s
    return i16(len(b)) + b


def kbytes(b):
    if b is None:
        return i32(-1)
    return i32(len(b)) + b


def uvarint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def compact_string(s):
    if s is None:
        return uvarint(0)
    b = s.encode() if isinstance(s, str) else s
    return uvarint(len(b) + 1) + b


def compact_array(items):
    return uvarint(len(items) + 1) + b"".join(items)


NO_TAGS = b"\x00"


def header_v1(api_key, version, corr):
    return i16(api_key) + i16(version) + i32(corr) + string(CLIENT_ID)


def header_v2(api_key, version, corr):
    return header_v1(api_key, version, corr) + NO_TAGS


# ------------------------------------------------------------------ decoding
class Reader:
    def __init__(self, b):
        self.b = b
        self.p = 0

    def take(self, n):
        if n < 0 or self.p + n > len(self.b):
            raise ValueError("short buffer")
        r = self.b[self.p:self.p + n]
        self.p += n
        return r

    def i8(self): return struct.unpack(">b", self.take(1))[0]
    def i16(self): return struct.unpack(">h", self.take(2))[0]
    def i32(self): return struct.unpack(">i", self.take(4))[0]
    def u32(self): return struct.unpack(">I", self.take(4))[0]
    def i64(self): return struct.unpack(">q", self.take(8))[0]

    def uvarint(self):
        shift = v = 0
        while True:
            b = self.take(1)[0]
            v |= (b & 0x7F) << shift
            if not b & 0x80:
                return v
            shift += 7

    def varint(self):
        v = self.uvarint()
        return (v >> 1) ^ -(v & 1)

    def string(self):
        n = self.i16()
        return None if n < 0 else self.take(n).decode()

    def kbytes(self):
        n = self.i32()
        return None if n < 0 else self.take(n)

    def compact_string(self):
        n = self.uvarint()
        return None if n == 0 else self.take(n - 1).decode()

    def compact_bytes(self):
        n = self.uvarint()
        return None if n == 0 else self.take(n - 1)

    def tags(self):
        for _ in range(self.uvarint()):
            self.uvarint()
            self.take(self.uvarint())

    def left(self):
        return len(self.b) - self.p


def decompress(codec, data, legacy):
    from pykafka.utils import compression as pc
    import cramjam
    if codec == 1:
        return gzip.decompress(data)
    if codec == 2:
        return pc.decode_snappy(data)  # handles the xerial framing and raw snappy
    if codec == 3:
        return pc.decode_lz4_old_kafka(data) if legacy else pc.decode_lz4(data)
    if codec == 4:
        return bytes(cramjam.zstd.decompress(data))
    raise ValueError("codec %d" % codec)


def decode_message_set(buf, out, wrappers):
    """Magic 0/1 message set -> out [(offset, key, value)]; returns trailing partial bytes."""
    r = Reader(buf)
    while r.left() >= 12:
        offset = r.i64()
        size = r.i32()
        if size > r.left():
            return r.left() + 12
        m = Reader(r.take(size))
        crc = m.u32()
        body = m.b[4:]
        if zlib.crc32(body) & 0xFFFFFFFF != crc:
            raise ValueError("crc mismatch at offset %d" % offset)
        magic = m.i8()
        attrs = m.i8()
        if magic == 1:
            m.i64()
        key = m.kbytes()
        value = m.kbytes()
        codec = attrs & 7
        if codec:
            wrappers.append(offset)
            inner = []
            decode_message_set(decompress(codec, value, legacy=(magic == 0)), inner, [])
            out.extend(inner)
        else:
            out.append((offset, key, value))
    return r.left()


def decode_record_batches(buf, out, batches):
    r = Reader(buf)
    while r.left() >= 61:
        base = r.i64()
        length = r.i32()
        if length > r.left():
            return r.left() + 12
        b = Reader(r.take(length))
        b.i32()  # partition leader epoch
        magic = b.i8()
        if magic != 2:
            raise ValueError("magic %d" % magic)
        b.u32()  # crc32c (not checked here; grete checks it)
        attrs = b.i16()
        b.i32()  # last offset delta
        b.i64(); b.i64()  # timestamps
        b.i64(); b.i16(); b.i32()  # producer id / epoch / base sequence
        n = b.i32()
        data = b.b[b.p:]
        codec = attrs & 7
        if codec:
            data = decompress(codec, data, legacy=False)
        batches.append({"base_offset": base, "codec": codec, "records": n})
        rr = Reader(data)
        for _ in range(n):
            rlen = rr.varint()
            rec = Reader(rr.take(rlen))
            rec.i8()
            rec.varint()  # timestamp delta
            od = rec.varint()
            kl = rec.varint()
            key = None if kl < 0 else rec.take(kl)
            vl = rec.varint()
            value = None if vl < 0 else rec.take(vl)
            headers = []
            for _ in range(rec.varint()):
                hk = rec.take(rec.varint()).decode()
                hl = rec.varint()
                headers.append((hk, None if hl < 0 else rec.take(hl)))
            out.append((base + od, key, value, headers))
    return r.left()


# ------------------------------------------------------------------ transport
class Conn:
    def __init__(self, addr):
        self.addr = addr
        self.sock = socket.create_connection(hostport(addr), timeout=30)

    def roundtrip(self, frame):
        self.sock.sendall(i32(len(frame)) + frame)
        n = struct.unpack(">i", self._read(4))[0]
        return self._read(n)

    def _read(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise IOError("connection closed")
            buf += chunk
        return bytes(buf)

    def close(self):
        self.sock.close()


class Proxy:
    """A recording TCP proxy in front of one broker.

    Clients bootstrap through it; Metadata v0 responses are rewritten (same
    length: only the port changes) so clients keep talking through the proxy.
    Every (request, response) frame pair is appended to self.pairs as
    (api_key, api_version, request_frame, response_frame)."""

    def __init__(self, upstream):
        self.upstream = hostport(upstream)
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.addr = "127.0.0.1:%d" % self.port
        self.pairs = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            u = socket.create_connection(self.upstream)
            pending = []
            cv = threading.Condition()
            threading.Thread(target=self._c2u, args=(c, u, pending, cv), daemon=True).start()
            threading.Thread(target=self._u2c, args=(c, u, pending, cv), daemon=True).start()

    @staticmethod
    def _frame(sock):
        try:
            return Proxy._frame_inner(sock)
        except OSError:
            return None

    @staticmethod
    def _frame_inner(sock):
        hdr = b""
        while len(hdr) < 4:
            x = sock.recv(4 - len(hdr))
            if not x:
                return None
            hdr += x
        n = struct.unpack(">i", hdr)[0]
        buf = bytearray()
        while len(buf) < n:
            x = sock.recv(n - len(buf))
            if not x:
                return None
            buf += x
        return bytes(buf)

    def _c2u(self, c, u, pending, cv):
        while True:
            f = self._frame(c)
            if f is None:
                try:
                    u.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            api, ver = struct.unpack(">hh", f[:4])
            acks = None
            if api == 0 and ver <= 2:
                acks = struct.unpack(">h", f[10 + struct.unpack(">h", f[8:10])[0]:][:2])[0]
            with cv:
                if acks != 0:
                    pending.append((api, ver, f))
                else:
                    with self.lock:
                        self.pairs.append((api, ver, f, None))
            u.sendall(i32(len(f)) + f)

    def _u2c(self, c, u, pending, cv):
        while True:
            f = self._frame(u)
            if f is None:
                c.close()
                u.close()
                return
            with cv:
                api, ver, req = pending.pop(0)
            if api == 3 and ver == 0:
                f = self._rewrite_metadata_v0(f)
            with self.lock:
                self.pairs.append((api, ver, req, f))
            c.sendall(i32(len(f)) + f)

    def _rewrite_metadata_v0(self, f):
        b = bytearray(f)
        r = Reader(f)
        r.i32()
        for _ in range(r.i32()):
            r.i32()
            r.string()
            if r.i32() == self.upstream[1]:
                b[r.p - 4:r.p] = i32(self.port)
        return bytes(b)

    def take(self, api):
        with self.lock:
            out = [p for p in self.pairs if p[0] == api]
            self.pairs = []
        return out

    def close(self):
        self.lsock.close()


MANIFEST = {"format": "frames without the 4-byte size prefix", "captures": []}


def save(name, req, resp, **meta):
    with open(os.path.join(OUT, name + ".request.bin"), "wb") as f:
        f.write(req)
    with open(os.path.join(OUT, name + ".response.bin"), "wb") as f:
        f.write(resp)
    entry = {"name": name, "request": name + ".request.bin", "response": name + ".response.bin"}
    entry.update(meta)
    MANIFEST["captures"].append(entry)
    log("  saved %s (%d + %d bytes)" % (name, len(req), len(resp)))


def recs_json(recs):
    out = []
    for r in recs:
        d = {"offset": r[0],
             "key": None if r[1] is None else r[1].decode(),
             "value": None if r[2] is None else r[2].decode()}
        if len(r) > 3:
            d["headers"] = [[k, None if v is None else v.decode()] for k, v in r[3]]
        out.append(d)
    return out


# ------------------------------------------------------------------ Kafka 0.9
KCAT09 = ["-X", "api.version.request=false", "-X", "broker.version.fallback=0.9.0.1"]
CODECS = ["gzip", "snappy", "lz4"]


def metadata_v0(conn, corr, topics):
    body = i32(len(topics)) + b"".join(string(t) for t in topics)
    req = header_v1(3, 0, corr) + body
    return req, conn.roundtrip(req)


def parse_metadata_v0(resp):
    r = Reader(resp)
    r.i32()
    brokers = [(r.i32(), r.string(), r.i32()) for _ in range(r.i32())]
    topics = []
    for _ in range(r.i32()):
        err = r.i16()
        name = r.string()
        parts = []
        for _ in range(r.i32()):
            perr, pid, leader = r.i16(), r.i32(), r.i32()
            reps = [r.i32() for _ in range(r.i32())]
            isr = [r.i32() for _ in range(r.i32())]
            parts.append((perr, pid, leader, reps, isr))
        topics.append((err, name, parts))
    return brokers, topics


def wait_topic_v0(conn, topic):
    for _ in range(100):
        _, resp = metadata_v0(conn, 999, [topic])
        _, topics = parse_metadata_v0(resp)
        if topics and topics[0][0] == 0 and topics[0][2] and topics[0][2][0][2] >= 0:
            return
        time.sleep(0.2)
    raise RuntimeError("topic %s never got a leader" % topic)


def fetch_v0_request(corr, topic, offset, max_bytes):
    body = (i32(-1) + i32(100) + i32(1) + i32(1) + string(topic) + i32(1)
            + i32(0) + i64(offset) + i32(max_bytes))
    return header_v1(1, 0, corr) + body


def parse_fetch_v0(resp):
    r = Reader(resp)
    r.i32()
    assert r.i32() == 1
    r.string()
    assert r.i32() == 1
    pid, err, hw = r.i32(), r.i16(), r.i64()
    ms = r.kbytes()
    assert r.left() == 0
    return err, hw, ms


def message_v0(key, value):
    body = i8(0) + i8(0) + kbytes(key) + kbytes(value)
    return i64(0) + i32(len(body) + 4) + u32(zlib.crc32(body) & 0xFFFFFFFF) + body


def produce_pykafka(brokers, topic, codec_name, values_keys):
    from pykafka import KafkaClient
    from pykafka.common import CompressionType
    codec = {"gzip": CompressionType.GZIP, "snappy": CompressionType.SNAPPY,
             "lz4": CompressionType.LZ4}[codec_name]
    client = KafkaClient(hosts=brokers, broker_version="0.9.0")
    t = client.topics[topic]
    for chunk in (values_keys[:5], values_keys[5:]):
        # One request (one compressed wrapper message) per chunk.
        with t.get_producer(compression=codec, min_queued_messages=len(chunk),
                            linger_ms=1000, sync=False, delivery_reports=False,
                            max_retries=0) as p:
            for k, v in chunk:
                p.produce(v, partition_key=k)


def kcat_version(kcat):
    import re
    out = sh(kcat, "-V", check=False).stdout.decode()
    m = re.search(r"Version (\S+) .*librdkafka (\S+)", out)
    return "kcat %s (librdkafka %s)" % (m.group(1), m.group(2)) if m else "kcat"


def capture_kafka09():
    brokers = ENV["GRETE_KAFKA09_BROKERS"]
    kcat = ENV["GRETE_KCAT"]
    log("kafka09: restarting the single cluster for a clean state")
    sh(os.path.join(ROOT, "scripts", "kafka09"), "stop", "--cluster", "single")
    sh(os.path.join(ROOT, "scripts", "kafka09"), "start", "--cluster", "single")
    conn = Conn(brokers)
    corr = 1

    # Metadata v0 for a topic that does not exist yet: auto-creation answers
    # LEADER_NOT_AVAILABLE (5) first; then again once the leader is elected.
    req, resp = metadata_v0(conn, corr, ["golden-raw"])
    _, topics = parse_metadata_v0(resp)
    save("kafka09-metadata-v0-autocreate", req, resp, broker="kafka-0.9.0.1", api="Metadata",
         version=0, topic="golden-raw", expect_topic_error=topics[0][0],
         note="first request for a new topic; auto-creation in progress")
    wait_topic_v0(conn, "golden-raw")
    corr += 1
    req, resp = metadata_v0(conn, corr, ["golden-raw"])
    b, topics = parse_metadata_v0(resp)
    assert topics[0][0] == 0
    save("kafka09-metadata-v0-topic", req, resp, broker="kafka-0.9.0.1", api="Metadata",
         version=0, topic="golden-raw",
         expect={"brokers": [[n, h, p] for n, h, p in b], "partitions": 1, "leader": 0})

    # Produce v0, acks=1, an uncompressed message set built here.
    raw = [(b"raw-k0", b"raw-0"), (None, b"raw-1"), (b"raw-k2", b""), (b"raw-k3", None)]
    mset = b"".join(message_v0(k, v) for k, v in raw)
    corr += 1
    body = (i16(1) + i32(10000) + i32(1) + string("golden-raw") + i32(1) + i32(0)
            + i32(len(mset)) + mset)
    req = header_v1(0, 0, corr) + body
    resp = conn.roundtrip(req)
    save("kafka09-produce-v0-raw", req, resp, broker="kafka-0.9.0.1", api="Produce", version=0,
         topic="golden-raw", expect={"partition": 0, "error_code": 0, "base_offset": 0},
         records=recs_json([(i, k, v) for i, (k, v) in enumerate(raw)]))

    # Data written by kcat (librdkafka, 0.9 fallback => magic 0 messages) and PyKafka,
    # through a recording proxy so the clients' own Produce requests are kept too
    # (the 0.9 broker re-compresses wrapper messages, so Fetch shows the broker's
    # encoding, the Produce request the client's).
    proxy = Proxy(brokers)
    written = {}

    def save_client_produce(topic, writer, codec, kv):
        found = None
        for _, ver, req, resp in proxy.take(0):
            r = Reader(req)
            r.take(8)
            r.string()
            r.i16(); r.i32(); r.i32()
            if r.string() != topic or resp is None:
                continue
            r.i32(); r.i32()
            recs, wrappers = [], []
            assert decode_message_set(r.kbytes(), recs, wrappers) == 0
            if recs and recs[0][1:] == kv[0]:
                found = (ver, req, resp, recs)
                break
        assert found, topic
        ver, req, resp, recs = found
        # Producers number inner offsets 0..n-1 (or leave them 0); compare key/value only.
        assert [(k, v) for _, k, v in recs] == kv[:5], (topic, recs)
        save("kafka09-produce-v%d-%s" % (ver, topic[len("golden-"):]), req, resp,
             broker="kafka-0.9.0.1", api="Produce", version=ver, topic=topic, partition=0,
             writer=writer, codec=codec, inner_offsets=[o for o, _, _ in recs],
             records=recs_json([(i, k, v) for i, (k, v) in enumerate(kv[:5])]),
             expect={"error_code": 0, "base_offset": 0},
             note="the client's own request (captured by a proxy); the first of the two "
                  "requests that wrote the topic")

    for codec in CODECS:
        topic = "golden-kcat-" + codec
        kv = [(("k%d" % i).encode(), ("kcat-%s-%d" % (codec, i)).encode()) for i in range(10)]
        for chunk in (kv[:5], kv[5:]):
            lines = b"".join(k + b":" + v + b"\n" for k, v in chunk)
            sh(kcat, *KCAT09, "-P", "-b", proxy.addr, "-t", topic, "-p", "0", "-K", ":",
               "-z", codec, "-X", "linger.ms=200", stdin=lines)
        written[topic] = (kcat_version(kcat) + " -z " + codec, codec, kv)
        save_client_produce(topic, *written[topic])
        log("  wrote %s" % topic)
    for codec in CODECS:
        topic = "golden-pykafka-" + codec
        kv = [(("k%d" % i).encode(), ("pykafka-%s-%d" % (codec, i)).encode()) for i in range(10)]
        produce_pykafka(proxy.addr, topic, codec, kv)
        written[topic] = ("pykafka 2.8.0 " + codec, codec, kv)
        save_client_produce(topic, *written[topic])
        log("  wrote %s" % topic)

    proxy.close()
    for topic in ["golden-raw"] + sorted(written):
        wait_topic_v0(conn, topic)
        corr += 1
        req = fetch_v0_request(corr, topic, 0, 1 << 20)
        resp = conn.roundtrip(req)
        err, hw, ms = parse_fetch_v0(resp)
        recs, wrappers = [], []
        partial = decode_message_set(ms, recs, wrappers)
        assert err == 0 and partial == 0, (topic, err, partial)
        if topic == "golden-raw":
            expect = [(i, k, v) for i, (k, v) in enumerate(raw)]
            writer, codec = "grete-golden raw Produce v0", "none"
        else:
            writer, codec, kv = written[topic]
            expect = [(i, k, v) for i, (k, v) in enumerate(kv)]
        assert recs == expect, (topic, recs, expect)
        what = topic[len("golden-"):]
        save("kafka09-fetch-v0-" + what, req, resp, broker="kafka-0.9.0.1", api="Fetch",
             version=0, topic=topic, partition=0, fetch_offset=0, writer=writer, codec=codec,
             high_watermark=hw, wrapper_offsets=wrappers, records=recs_json(recs))
        if topic == "golden-kcat-gzip":
            # Cut the message set short: the last message is partial.
            corr += 1
            req = fetch_v0_request(corr, topic, 0, len(ms) - 7)
            resp = conn.roundtrip(req)
            _, _, ms2 = parse_fetch_v0(resp)
            recs2, wr2 = [], []
            partial = decode_message_set(ms2, recs2, wr2)
            save("kafka09-fetch-v0-kcat-gzip-partial", req, resp, broker="kafka-0.9.0.1",
                 api="Fetch", version=0, topic=topic, partition=0, fetch_offset=0,
                 writer=writer, codec=codec, high_watermark=hw, wrapper_offsets=wr2,
                 partial_trailing_bytes=partial, records=recs_json(recs2),
                 note="partition max_bytes is 7 bytes short of the full message set: the "
                      "last wrapper message is truncated and must be ignored")
        if topic == "golden-pykafka-gzip":
            # Fetch from the middle of a compressed wrapper: the broker returns the
            # whole wrapper, the client must drop offsets below the fetch offset.
            corr += 1
            req = fetch_v0_request(corr, topic, 3, 1 << 20)
            resp = conn.roundtrip(req)
            _, _, ms3 = parse_fetch_v0(resp)
            recs3, wr3 = [], []
            decode_message_set(ms3, recs3, wr3)
            save("kafka09-fetch-v0-pykafka-gzip-offset3", req, resp, broker="kafka-0.9.0.1",
                 api="Fetch", version=0, topic=topic, partition=0, fetch_offset=3,
                 writer=writer, codec=codec, high_watermark=hw, wrapper_offsets=wr3,
                 records_in_frame=recs_json(recs3),
                 records=recs_json([r for r in recs3 if r[0] >= 3]),
                 note="records_in_frame includes offsets 0-2 of the first wrapper; "
                      "records is what a consumer must yield")
    conn.close()


# ------------------------------------------------------------------ tansu
def api_versions(conn, corr, version):
    if version >= 3:
        body = compact_string("grete-golden") + compact_string("0.1.0") + NO_TAGS
        req = header_v2(18, version, corr) + body
    else:
        req = header_v1(18, version, corr)
    return req, conn.roundtrip(req)


def parse_api_versions(resp, version):
    r = Reader(resp)
    r.i32()
    err = r.i16()
    out = {}
    n = r.uvarint() - 1 if version >= 3 else r.i32()
    for _ in range(n):
        k, lo, hi = r.i16(), r.i16(), r.i16()
        if version >= 3:
            r.tags()
        out[k] = (lo, hi)
    return err, out


def fetch_v12_request(corr, topic, offset):
    part = (i32(0) + i32(-1) + i64(offset) + i32(-1) + i64(-1) + i32(1 << 20) + NO_TAGS)
    topics = compact_array([compact_string(topic) + compact_array([part]) + NO_TAGS])
    body = (i32(-1) + i32(100) + i32(1) + i32(1 << 20) + i8(0) + i32(0) + i32(-1)
            + topics + compact_array([]) + compact_string("") + NO_TAGS)
    return header_v2(1, 12, corr) + body


def parse_fetch_v12(resp):
    r = Reader(resp)
    r.i32()
    r.tags()  # response header v1
    r.i32()  # throttle
    err = r.i16()
    r.i32()  # session id
    nt = r.uvarint() - 1
    assert nt == 1
    r.compact_string()
    assert r.uvarint() - 1 == 1
    r.i32()
    perr = r.i16()
    hw = r.i64()
    r.i64()
    r.i64()
    na = r.uvarint() - 1
    for _ in range(max(na, 0)):
        r.i64(); r.i64(); r.tags()
    r.i32()  # preferred read replica
    recs = r.compact_bytes()
    r.tags()
    r.tags()
    r.tags()
    assert r.left() == 0
    return err, perr, hw, recs or b""


def fetch_v4_request(corr, topic, offset):
    body = (i32(-1) + i32(100) + i32(1) + i32(1 << 20) + i8(0) + i32(1) + string(topic)
            + i32(1) + i32(0) + i64(offset) + i32(1 << 20))
    return header_v1(1, 4, corr) + body


def parse_fetch_v4(resp):
    r = Reader(resp)
    r.i32()  # correlation id
    r.i32()  # throttle
    assert r.i32() == 1
    r.string()
    assert r.i32() == 1
    r.i32()
    perr = r.i16()
    hw = r.i64()
    r.i64()
    for _ in range(max(r.i32(), 0)):
        r.i64(); r.i64()
    recs = r.kbytes()
    assert r.left() == 0
    return 0, perr, hw, recs or b""


def metadata_v12_request(corr, topics):
    t = [b"\x00" * 16 + compact_string(n) + NO_TAGS for n in topics]
    body = compact_array(t) + i8(0) + i8(0) + NO_TAGS
    return header_v2(3, 12, corr) + body


def capture_tansu():
    brokers = ENV["GRETE_TANSU_BROKERS"]
    kcat = ENV["GRETE_KCAT"]
    log("tansu: restarting for a clean state")
    sh(os.path.join(ROOT, "scripts", "tansu"), "stop")
    sh(os.path.join(ROOT, "scripts", "tansu"), "start")
    import confluent_kafka
    from confluent_kafka.admin import AdminClient, NewTopic

    conn = Conn(brokers)
    corr = 1
    req, resp = api_versions(conn, corr, 0)
    err, apis0 = parse_api_versions(resp, 0)
    save("tansu-apiversions-v0-default", req, resp, broker="tansu", api="ApiVersions", version=0,
         expect={"error_code": err, "api_count": len(apis0)})
    corr += 1
    req, resp = api_versions(conn, corr, 3)
    err, apis = parse_api_versions(resp, 3)
    save("tansu-apiversions-v3-default", req, resp, broker="tansu", api="ApiVersions", version=3,
         expect={"error_code": err, "api_count": len(apis),
                 "fetch": list(apis.get(1, ())), "metadata": list(apis.get(3, ())),
                 "produce": list(apis.get(0, ()))})
    log("  tansu fetch versions %s, metadata %s" % (apis.get(1), apis.get(3)))

    # kcat (librdkafka 2.0.2 from Debian 12) cannot talk to tansu 0.6.0: it fails to
    # parse tansu's ApiVersions v3 response (tagged fields) and gives up, even with
    # api.version.request=false. confluent-kafka bundles a current librdkafka.
    topics = ["golden-ck-" + c for c in ("none", "gzip", "snappy", "lz4", "zstd")]
    admin = AdminClient({"bootstrap.servers": brokers})
    fs = admin.create_topics([NewTopic(t, num_partitions=1, replication_factor=1) for t in topics])
    for t, f in fs.items():
        try:
            f.result(20)
        except Exception as e:  # already exists is fine
            log("  create %s: %s" % (t, e))

    written = {}
    for codec in ("none", "gzip", "snappy", "lz4", "zstd"):
        topic = "golden-ck-" + codec
        p = confluent_kafka.Producer({"bootstrap.servers": brokers, "compression.type": codec,
                                      "linger.ms": 500, "enable.idempotence": False})
        recs = []
        for i in range(5):
            k, v = ("k%d" % i).encode(), ("ck-%s-%d" % (codec, i)).encode() * (1 + i)
            hdrs = [("idx", str(i).encode()), ("writer", b"confluent-kafka")]
            if i == 2:
                hdrs.append(("null", None))
            p.produce(topic, value=v, key=k if i != 4 else None, partition=0, headers=hdrs)
            recs.append((i, k if i != 4 else None, v, hdrs))
        assert p.flush(30) == 0
        written[topic] = ("confluent-kafka %s (librdkafka %s)" % (
            confluent_kafka.version()[0], confluent_kafka.libversion()[0]), codec, recs)

    corr += 1
    req = metadata_v12_request(corr, ["golden-ck-none"])
    resp = conn.roundtrip(req)
    save("tansu-metadata-v12-topic", req, resp, broker="tansu", api="Metadata", version=12,
         topic="golden-ck-none", expect={"partitions": 1, "port": hostport(brokers)[1]})

    for topic in topics:
        corr += 1
        req = fetch_v12_request(corr, topic, 0)
        resp = conn.roundtrip(req)
        err, perr, hw, data = parse_fetch_v12(resp)
        recs, batches = [], []
        partial = decode_record_batches(data, recs, batches)
        writer, codec, expect = written[topic]
        assert err == 0 and perr == 0 and partial == 0, (topic, err, perr, partial)
        assert recs == expect, (topic, recs, expect)
        save("tansu-fetch-v12-" + topic[len("golden-"):], req, resp, broker="tansu", api="Fetch",
             version=12, topic=topic, partition=0, fetch_offset=0, writer=writer, codec=codec,
             high_watermark=hw, batches=batches, records=recs_json(recs))
        if codec == "lz4":
            # The same data through a non-flexible Fetch version (v4: v2 batches, no tags).
            corr += 1
            req = fetch_v4_request(corr, topic, 0)
            resp = conn.roundtrip(req)
            err, perr, hw, data = parse_fetch_v4(resp)
            recs4, batches4 = [], []
            assert perr == 0 and decode_record_batches(data, recs4, batches4) == 0
            assert recs4 == expect, (topic, recs4)
            save("tansu-fetch-v4-" + topic[len("golden-"):], req, resp, broker="tansu",
                 api="Fetch", version=4, topic=topic, partition=0, fetch_offset=0,
                 writer=writer, codec=codec, high_watermark=hw, batches=batches4,
                 records=recs_json(recs4))
    conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", choices=["kafka09", "tansu"])
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    mpath = os.path.join(OUT, "manifest.json")
    if args.only and os.path.exists(mpath):
        with open(mpath) as f:
            old = json.load(f)
        prefix = "kafka09-" if args.only == "tansu" else "tansu-"
        MANIFEST["captures"] = [c for c in old["captures"] if c["name"].startswith(prefix)]
    try:
        if args.only in (None, "kafka09"):
            capture_kafka09()
        if args.only in (None, "tansu"):
            capture_tansu()
    finally:
        subprocess.run([os.path.join(ROOT, "scripts", "kafka09"), "stop", "--cluster", "single"],
                       capture_output=True)
        subprocess.run([os.path.join(ROOT, "scripts", "tansu"), "stop"], capture_output=True)
    MANIFEST["captures"].sort(key=lambda c: c["name"])
    with open(mpath, "w") as f:
        json.dump(MANIFEST, f, indent=1, sort_keys=True)
        f.write("\n")
    log("wrote %s (%d captures)" % (mpath, len(MANIFEST["captures"])))


if __name__ == "__main__":
    main()
