#!/usr/bin/env python3
"""Reads and commits a consumer group's offsets with another client, for grete's offset
interop tests.

    interop-offsets.py CLIENT BROKERS TOPIC GROUP ACTION [N]

CLIENT is `pykafka` (PyKafka 2.8.0's SimpleConsumer, Kafka 0.9) or `confluent`
(confluent-kafka, modern brokers such as tansu). Only partition 0 of TOPIC is used.

ACTION:
  next         print the offset of the first record a consumer of GROUP gets (it starts
               at the group's committed offset); nothing is committed
  commit N     read N records from the group's committed offset (or the beginning) and
               commit, then print the offset committed (the next one to read)
  committed    print the group's committed offset as the client reports it (confluent:
               -1 for none); reads nothing

Exits 1 if no record comes within 20 s. Only 127.0.0.1 brokers are used by the tests.
"""

import sys
import time


def pykafka_consumer(brokers, topic, group):
    from pykafka import KafkaClient
    from pykafka.common import OffsetType

    client = KafkaClient(hosts=brokers, broker_version="0.9.0")
    t = client.topics[topic.encode()]
    return t.get_simple_consumer(
        consumer_group=group.encode(),
        auto_offset_reset=OffsetType.EARLIEST,
        auto_commit_enable=False,
        consumer_timeout_ms=20000,
        partitions=[t.partitions[0]],
    )


def pykafka(brokers, topic, group, action, n):
    consumer = pykafka_consumer(brokers, topic, group)
    try:
        if action == "committed":
            print(dict(consumer.fetch_offsets())[0].offset)
            return 0
        if action == "next":
            m = consumer.consume()
            if m is None:
                return 1
            print(m.offset)
            return 0
        last = None
        for _ in range(n):
            m = consumer.consume()
            if m is None:
                return 1
            last = m.offset
        consumer.commit_offsets()
        print(last + 1)
        return 0
    finally:
        consumer.stop()


def confluent(brokers, topic, group, action, n):
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({
        "bootstrap.servers": brokers,
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    })
    try:
        if action == "committed":
            offset = c.committed([TopicPartition(topic, 0)], timeout=10)[0].offset
            print(offset if offset >= 0 else -1)
            return 0
        # Assigned without an offset: the group's committed one, else the reset policy.
        c.assign([TopicPartition(topic, 0)])
        got = []
        deadline = time.time() + 20
        want = 1 if action == "next" else n
        while len(got) < want and time.time() < deadline:
            m = c.poll(0.5)
            if m is None or m.error():
                continue
            got.append(m.offset())
        if len(got) < want:
            return 1
        if action == "next":
            print(got[0])
            return 0
        committed = c.commit(offsets=[TopicPartition(topic, 0, got[-1] + 1)], asynchronous=False)
        print(committed[0].offset)
        return 0
    finally:
        c.close()


def main():
    if len(sys.argv) < 6:
        sys.stderr.write(__doc__)
        return 2
    client, brokers, topic, group, action = sys.argv[1:6]
    n = int(sys.argv[6]) if len(sys.argv) > 6 else 0
    run = {"pykafka": pykafka, "confluent": confluent}[client]
    return run(brokers, topic, group, action, n)


if __name__ == "__main__":
    sys.exit(main())
