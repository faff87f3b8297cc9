"""Python clients for the sentiment service (sync and asyncio) and the ``sentiment`` command-line tool."""

from clients.aio import AsyncSentimentClient
from clients.client import SentimentClient
from clients.errors import SentimentError
from clients.types import (Explanation, ModelInfo, ModelVersion, Prediction, StreamResult, WindowPrediction,
                           WordAttribution)

__all__ = ["AsyncSentimentClient", "Explanation", "ModelInfo", "ModelVersion", "Prediction", "SentimentClient",
           "SentimentError", "StreamResult", "WindowPrediction", "WordAttribution"]
