"""Contracts shared by the parts: MQTT JSON Schemas, SQL migrations and the state enums."""
