"""The request path: stages run in the order `build_pipeline` declares, then forward and relay, then
the observers, a batch of finished requests at a time."""

from gateway.pipeline.core import Pipeline, Stage
from gateway.pipeline.observers import Observer, ObserverBatch

__all__ = ["Observer", "ObserverBatch", "Pipeline", "Stage"]
