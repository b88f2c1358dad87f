#!/usr/bin/env python3
"""Writes records with another Kafka client, for grete's consumer interop tests.

    interop-write.py CLIENT BROKERS TOPIC COUNT CODEC [TIMEOUT_S]

CLIENT is `kcat` (librdkafka's CLI; Kafka 0.9 message format v0), `pykafka` (PyKafka
2.8.0's Producer: Kafka 0.9, message format v0) or `confluent` (confluent-kafka: modern
brokers such as tansu, record batches v2 with headers). CODEC is none, gzip, snappy, lz4
or zstd (zstd: confluent only).

Record i (0 <= i < COUNT) has key `k<i>`, value `<CLIENT>-<CODEC>-<i>-` followed by
letters up to 100 bytes, and with `confluent` one header `i` = `<i>`, so a reader can
check every record without a copy of what was written: see `expected()`. Records go to
partitions by key hash (each client's default), in index order within a partition.

Exits 0 once every record is acknowledged (acks=all), 1 otherwise, within TIMEOUT_S
(default 120). Only 127.0.0.1 brokers are used by the tests.
"""

import subprocess
import sys
import time

FILLER = b"abcdefghijklmnopqrstuvwxyz"


def expected(client, codec, i):
    """The key, value and headers of record i."""
    key = b"k%d" % i
    value = b"%s-%s-%d-" % (client.encode(), codec.encode(), i)
    value += (FILLER * 4)[: max(0, 100 - len(value))]
    headers = [("i", b"%d" % i)] if client == "confluent" else []
    return key, value, headers


def kcat(brokers, topic, count, codec, timeout):
    lines = b"".join(
        k + b"\t" + v + b"\n" for k, v, _ in (expected("kcat", codec, i) for i in range(count))
    )
    cmd = [
        "kcat", "-P", "-b", brokers, "-t", topic, "-K", "\t", "-z", codec,
        "-X", "api.version.request=false", "-X", "broker.version.fallback=0.9.0.1",
        "-X", "request.required.acks=-1",
    ]
    r = subprocess.run(cmd, input=lines, timeout=timeout, capture_output=True)
    if r.returncode != 0:
        sys.stderr.write(r.stderr.decode(errors="replace"))
        return 1
    return 0


def pykafka(brokers, topic, count, codec, timeout):
    from pykafka import KafkaClient
    from pykafka.common import CompressionType

    codecs = {
        "none": CompressionType.NONE,
        "gzip": CompressionType.GZIP,
        "snappy": CompressionType.SNAPPY,
        "lz4": CompressionType.LZ4,
    }
    client = KafkaClient(hosts=brokers, broker_version="0.9.0")
    t = client.topics[topic.encode()]
    failed = 0
    with t.get_producer(
        compression=codecs[codec],
        required_acks=-1,
        delivery_reports=True,
        sync=False,
        linger_ms=10,
        partitioner=lambda partitions, key: partitions[hash_key(key) % len(partitions)],
    ) as producer:
        for i in range(count):
            key, value, _ = expected("pykafka", codec, i)
            producer.produce(value, partition_key=key)
        producer.stop()
        while True:
            try:
                _, exc = producer.get_delivery_report(block=False)
            except Exception:
                break
            if exc is not None:
                failed += 1
    return 1 if failed else 0


def hash_key(key):
    """A stable partitioner (Python's hash() of bytes is salted per process)."""
    h = 0
    for b in key:
        h = (h * 31 + b) & 0x7FFFFFFF
    return h


def confluent(brokers, topic, count, codec, timeout):
    from confluent_kafka import Producer

    p = Producer({
        "bootstrap.servers": brokers,
        "acks": "all",
        "compression.codec": codec,
        "linger.ms": 10,
    })
    failed = []

    def report(err, _msg):
        if err is not None:
            failed.append(err)

    for i in range(count):
        key, value, headers = expected("confluent", codec, i)
        while True:
            try:
                p.produce(topic, value, key, headers=headers, on_delivery=report)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    left = p.flush(timeout)
    if left or failed:
        sys.stderr.write("%d not delivered, %d failed: %s\n" % (left, len(failed), failed[:3]))
        return 1
    return 0


def main():
    if len(sys.argv) < 6:
        sys.stderr.write(__doc__)
        return 2
    client, brokers, topic, count, codec = sys.argv[1:6]
    timeout = float(sys.argv[6]) if len(sys.argv) > 6 else 120.0
    start = time.time()
    run = {"kcat": kcat, "pykafka": pykafka, "confluent": confluent}[client]
    code = run(brokers, topic, int(count), codec, timeout)
    sys.stderr.write("%s wrote %s records (%s) to %s in %.1f s\n"
                     % (client, count, codec, topic, time.time() - start))
    return code


if __name__ == "__main__":
    sys.exit(main())
