"""The request path: stages run in the order `build_pipeline` declares, then forward and relay."""

from gateway.pipeline.builder import build_pipeline
from gateway.pipeline.core import Observer, Pipeline, Stage

__all__ = ["Observer", "Pipeline", "Stage", "build_pipeline"]
