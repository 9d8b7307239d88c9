"""`eventscope demo`: a small event-driven shop, the broker and the console in one command.

- `flows.py`     what happens to an order: the checkout saga's steps, the random outcomes
- `messages.py`  the wire format: CloudEvents binary mode, Spring Kafka retry and DLT headers
- `telemetry.py` OpenTelemetry: one tracer per service, traceparent in Kafka headers
- `shop.py`      the services (order, inventory, payment, shipping, notification)
- `runner.py`    broker + console + shop, and a clean stop on Ctrl-C
"""
