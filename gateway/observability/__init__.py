"""Logs, health and (later) metrics."""
