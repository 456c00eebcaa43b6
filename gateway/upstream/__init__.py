"""The seam between the gateway and its upstreams: one pooled client per provider."""

from gateway.upstream.transport import Transport, TransportFactory, UpstreamRequest, UpstreamResponse

__all__ = ["Transport", "TransportFactory", "UpstreamRequest", "UpstreamResponse"]
