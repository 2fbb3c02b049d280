"""MQTT reporting: durable outbox publisher, topic tree, TLS, Home Assistant discovery.

The daemon builds one :class:`~dockd.report.mqtt.reporter.MqttReporter`; ``dockd watch``
uses :mod:`~dockd.report.mqtt.stream_verify`. The topic tree and payloads are documented in
docs/mqtt.md, with a JSON Schema per payload in ``schemas/``.
"""
