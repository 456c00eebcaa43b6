"""Metering: token usage extracted from every response, priced, and written to the usage ledger."""
