"""The request path: stages run in the order `build_pipeline` declares, then forward and relay."""

from gateway.pipeline.core import Observer, Pipeline, Stage

__all__ = ["Observer", "Pipeline", "Stage"]
