"""Publishes COUNT factory readings at QoS 1 with paho-mqtt and waits for every PUBACK.

Usage: python paho_publish.py PORT TOPIC COUNT
"""
import json
import sys

import paho.mqtt.client as mqtt

port, topic, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"paho-{port}")
client.connect("127.0.0.1", port)
client.loop_start()
infos = [
    client.publish(topic, json.dumps({"machine_id": "M-5", "seq": i, "temperature": 60.0 + i}), qos=1)
    for i in range(count)
]
for info in infos:
    info.wait_for_publish(timeout=10)
    if not info.is_published():
        sys.exit("a message was not acknowledged by the broker")
client.loop_stop()
client.disconnect()
