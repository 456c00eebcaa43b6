"""Usage extractors: watch a response pass chunk by chunk and say what it reported about its usage.

`extractor_for` (in `factory`) picks one per response. One module per format family (`openai`,
`openai_strip`, `anthropic`, `gemini`), whole JSON bodies in `json_body`, the shared event-stream
machinery in `sse` (splitting, finding events from the ends), `tally` (how generated characters are
counted) and `streams` (streams kept and read at their end, where the usage is: the characters are
counted only when it is missing).
"""

from gateway.metering.extractors.factory import extractor_for

__all__ = ["extractor_for"]
