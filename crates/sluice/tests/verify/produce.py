"""Produces one message, as a tampering writer would: usage produce.py BOOTSTRAP TOPIC KEY VALUE SEQUENCE"""
import sys

from confluent_kafka import Producer

bootstrap, topic, key, value, seq = sys.argv[1:6]
p = Producer({"bootstrap.servers": bootstrap})
p.produce(topic, key=key.encode(), value=value.encode(),
          headers=[("sluice.sequence", seq.encode()), ("sluice.op", b"update")])
if p.flush(30) != 0:
    sys.exit("the message was not delivered")
