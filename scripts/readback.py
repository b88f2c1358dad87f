#!/usr/bin/env python3
"""Reads every message of a topic with another Kafka client, for grete's interop tests.

    readback.py CLIENT BROKERS TOPIC COUNT [TIMEOUT_S]

CLIENT is `confluent` (confluent-kafka / librdkafka: modern brokers such as tansu) or
`pykafka` (PyKafka 2.8.0's SimpleConsumer: Kafka 0.9). Reads from the beginning of every
partition until COUNT messages arrived or TIMEOUT_S (default 60) passed, and prints one
line per message:

    PARTITION OFFSET KEY VALUE

KEY and VALUE are hex, `-` for null. Exits 1 if fewer than COUNT messages arrived.
Only 127.0.0.1 brokers are used by the tests.
"""

import sys
import time


def hexa(b):
    return "-" if b is None else (b.hex() or "")


def confluent(brokers, topic, count, timeout):
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({
        "bootstrap.servers": brokers,
        "group.id": "grete-readback-%d" % time.time_ns(),
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    })
    meta = c.list_topics(topic, timeout=10)
    parts = sorted(meta.topics[topic].partitions)
    c.assign([TopicPartition(topic, p, 0) for p in parts])
    out = []
    end = time.time() + timeout
    while len(out) < count and time.time() < end:
        m = c.poll(1.0)
        if m is None or m.error():
            continue
        out.append((m.partition(), m.offset(), m.key(), m.value()))
    c.close()
    return out


def pykafka(brokers, topic, count, timeout):
    from pykafka import KafkaClient
    from pykafka.common import OffsetType

    client = KafkaClient(hosts=brokers, broker_version="0.9.0")
    t = client.topics[topic.encode()]
    consumer = t.get_simple_consumer(
        auto_offset_reset=OffsetType.EARLIEST,
        reset_offset_on_start=True,
        consumer_timeout_ms=int(timeout * 1000),
    )
    out = []
    for m in consumer:
        if m is None:
            break
        out.append((m.partition_id, m.offset, m.partition_key, m.value))
        if len(out) >= count:
            break
    consumer.stop()
    return out


def main():
    client, brokers, topic, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    timeout = float(sys.argv[5]) if len(sys.argv) > 5 else 60.0
    read = {"confluent": confluent, "pykafka": pykafka}[client]
    msgs = read(brokers, topic, count, timeout)
    for p, o, k, v in msgs:
        print(p, o, hexa(k), hexa(v))
    if len(msgs) < count:
        print("only %d of %d messages" % (len(msgs), count), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
