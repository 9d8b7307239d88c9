"""Kafka operations: changing groups, topics and records in Kafka itself, previewed first."""
