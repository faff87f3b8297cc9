"""Python clients for the sentiment service (sync and asyncio) and the ``sentiment`` command-line tool."""

from clients.aio import AsyncSentimentClient
from clients.client import SentimentClient
from clients.errors import SentimentError
from clients.types import ModelInfo, Prediction, StreamResult

__all__ = ["AsyncSentimentClient", "ModelInfo", "Prediction", "SentimentClient", "SentimentError", "StreamResult"]
