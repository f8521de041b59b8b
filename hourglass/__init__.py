"""Hourglass server side: the `hourglass` command, configuration, demo and simulator."""
