"""Round trip against the DataHub-protocol server with the official SDK: a signed call that
lists projects, then a put and a get on a probe topic. Usage: datahub_probe.py ENDPOINT"""

import os
import sys

from datahub import DataHub
from datahub.exceptions import ResourceExistException
from datahub.models import BlobRecord, CursorType

endpoint = sys.argv[1]
dh = DataHub(
    os.environ.get("SLUICE_DATAHUB_ACCESS_ID", "sluice"),
    os.environ.get("SLUICE_DATAHUB_ACCESS_KEY", "sluice-secret"),
    endpoint,
)
dh.list_project()
try:
    dh.create_project("sluice_probe", "dev/services probe")
except ResourceExistException:
    pass
try:
    dh.create_blob_topic("sluice_probe", "probe", 1, 1, "probe")
except ResourceExistException:
    pass
r = BlobRecord(blob_data=b"probe")
r.shard_id = "0"
assert dh.put_records("sluice_probe", "probe", [r]).failed_record_count == 0
latest = dh.get_cursor("sluice_probe", "probe", "0", CursorType.LATEST)
got = dh.get_blob_records("sluice_probe", "probe", "0", latest.cursor, 1)
assert got.records and got.records[0].blob_data == b"probe", got
print("datahub ok")
