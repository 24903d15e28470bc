"""The AWS IoT Analytics client of boto3 against fleetdb's HTTP API: BatchPutMessage with
base64 payloads (what the SDK sends), per-message errors, and the error shapes the SDK turns
into exceptions. Prints one line per check; tests/ingest_http.rs compares them.

Usage: python boto3_client.py HTTP_PORT
"""
import sys

import boto3

port = sys.argv[1]
client = boto3.client(
    "iotanalytics",
    region_name="us-east-1",
    endpoint_url=f"http://127.0.0.1:{port}",
    aws_access_key_id="fleetdb",
    aws_secret_access_key="any-signature-is-accepted",
)

r = client.batch_put_message(
    channelName="factory_sensor_channel",
    messages=[
        {"messageId": "b1", "payload": b'{"machine_id": "M-0007", "temperature": 70.5}'},
        {"messageId": "b2", "payload": b"not json"},
        {"messageId": "b3", "payload": b'{"bad-name": 1}'},
        {"messageId": "b1", "payload": b'{"machine_id": "dup"}'},
    ],
)
print("status", r["ResponseMetadata"]["HTTPStatusCode"])
for e in r["batchPutMessageErrorEntries"]:
    print("entry", e["messageId"], e["errorCode"], e["errorMessage"].split(":")[0])

try:
    client.batch_put_message(channelName="no_such_channel", messages=[{"messageId": "1", "payload": b"{}"}])
    print("no error")
except client.exceptions.ResourceNotFoundException as e:
    print("error", e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"])

try:
    client.batch_put_message(
        channelName="factory_sensor_channel",
        messages=[{"messageId": str(i), "payload": b"{}"} for i in range(101)],
    )
    print("no error")
except client.exceptions.InvalidRequestException as e:
    print("error", e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"])
