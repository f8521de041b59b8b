"""The Hourglass agent: probes a server's hardware and reports it over MQTT."""

__version__ = "0.1.0"
