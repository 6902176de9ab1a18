"""Puts one TUPLE record into a DataHub topic with the official SDK, as a tampering writer
would (the verification tests): fields not named are NULL.
Usage: datahub_put.py ENDPOINT PROJECT TOPIC NAME=VALUE..."""

import decimal
import os
import sys

from datahub import DataHub
from datahub.core import DatahubProtocolType
from datahub.models import TupleRecord

endpoint, project, topic = sys.argv[1:4]
values = dict(a.split("=", 1) for a in sys.argv[4:])
dh = DataHub(
    os.environ.get("SLUICE_DATAHUB_ACCESS_ID", "sluice"),
    os.environ.get("SLUICE_DATAHUB_ACCESS_KEY", "sluice-secret"),
    endpoint,
    protocol_type=DatahubProtocolType.JSON,
)
schema = dh.get_topic(project, topic).record_schema
record = TupleRecord(schema=schema)
types = {f.name: str(f.type).split(".")[-1].upper() for f in schema.field_list}
for name, text in values.items():
    ty = types[name]
    if ty in ("BIGINT", "TIMESTAMP", "INTEGER", "SMALLINT", "TINYINT"):
        value = int(text)
    elif ty in ("DOUBLE", "FLOAT"):
        value = float(text)
    elif ty == "DECIMAL":
        value = decimal.Decimal(text)
    else:
        value = text
    record.set_value(name, value)
record.shard_id = "0"
failed = dh.put_records(project, topic, [record]).failed_records
if failed:
    sys.exit(f"the record was not stored: {failed}")
