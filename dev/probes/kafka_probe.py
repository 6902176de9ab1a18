"""Readiness probe for the Kafka-protocol broker: produce one record with a client that is not
Sluice's (confluent-kafka) and read that same record back. Exit 0 only after the round trip."""

import sys
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

TOPIC = "sluice-harness-probe"


def main() -> int:
    bootstrap = sys.argv[1]
    common = {"bootstrap.servers": bootstrap, "socket.timeout.ms": 10000}
    admin = AdminClient(common)
    if TOPIC not in admin.list_topics(timeout=10).topics:
        futures = admin.create_topics([NewTopic(TOPIC, num_partitions=1, replication_factor=1)])
        try:
            futures[TOPIC].result(5)
        except Exception as e:  # another caller may have created it meanwhile
            if "TOPIC_ALREADY_EXISTS" not in str(e):
                raise
    value = uuid.uuid4().hex.encode()
    delivered = []
    producer = Producer({**common, "enable.idempotence": True, "acks": "all", "message.timeout.ms": 10000})
    producer.produce(TOPIC, value=value, key=b"probe", on_delivery=lambda err, msg: delivered.append((err, msg)))
    producer.flush(10)
    if not delivered or delivered[0][0] is not None:
        print(f"produce failed: {delivered}", file=sys.stderr)
        return 1
    msg = delivered[0][1]
    consumer = Consumer({**common, "group.id": "sluice-harness-probe", "enable.auto.commit": False})
    consumer.assign([TopicPartition(TOPIC, msg.partition(), msg.offset())])
    deadline = time.time() + 15
    try:
        while time.time() < deadline:
            got = consumer.poll(0.5)
            if got is None or got.error():
                continue
            if got.value() == value:
                print(f"round trip ok: {TOPIC}[{got.partition()}]@{got.offset()}")
                return 0
    finally:
        consumer.close()
    print("produced record was not read back", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
