"""The access log's line for one request: its cost written as the ledger and the reports write it."""

from __future__ import annotations

import logging
import time
from decimal import Decimal

import pytest

from gateway.errors import NotFound
from gateway.metering.usage import TokenUsage
from gateway.observability.logging import AccessLog
from tests.support.metering import PRINCIPAL, chat_call


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.fields: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.fields.append(record.fields)  # type: ignore[attr-defined]


def logged_cost(cost: Decimal | None) -> object:
    lines = Lines()
    logger = logging.Logger("access-test")
    logger.addHandler(lines)
    ctx = chat_call(principal=PRINCIPAL, body=b"{}")
    ctx.finished, ctx.status = ctx.started + 0.01, 200
    ctx.usage, ctx.cost_usd = TokenUsage(input_tokens=1, output_tokens=1), cost

    AccessLog(logger).observe(ctx)

    [fields] = lines.fields
    return fields["cost_usd"]


@pytest.mark.parametrize(
    ("cost", "written"),
    [
        (Decimal("0.00000015"), "0.00000015"),  # `str` alone would write 1.5E-7
        (Decimal("1.5E-9"), "0.0000000015"),
        (Decimal("0.0003075"), "0.0003075"),
        (Decimal("12.5"), "12.5"),
        (None, None),
    ],
)
def test_a_cost_is_written_in_plain_decimal_notation_however_small(
    cost: Decimal | None, written: str | None
) -> None:
    assert logged_cost(cost) == written


def test_a_request_under_no_mount_is_logged_in_the_shape_of_a_refused_one() -> None:
    lines = Lines()
    logger = logging.Logger("access-test")
    logger.addHandler(lines)
    refused = chat_call(body=b"{}")
    refused.finished, refused.status, refused.error = refused.started, 404, NotFound("no such path")
    access_log = AccessLog(logger)

    access_log.observe(refused)
    access_log.unrouted("req-1", "GET", "/nosuch/v1/models", NotFound("no such mount"), time.perf_counter())

    proxied, unrouted = lines.fields
    assert set(unrouted) == set(proxied)
    assert (unrouted["provider"], unrouted["status"], unrouted["error"]) == (None, 404, "not_found")
