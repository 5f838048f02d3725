"""The chat pipeline: one path for every chat completion, whole or streamed, with or without tools."""

from .chat import ChatPipeline
from .chat import Stream
from .chat import Whole

__all__ = ["ChatPipeline", "Stream", "Whole"]
