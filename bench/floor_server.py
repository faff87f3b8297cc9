"""The transport floor: a bare grpc.aio server that answers every ``Predict`` with a constant
prediction, no model, no batching, no interceptors. Its CPU per call is what the Python gRPC stack
alone costs; the benchmark subtracts nothing from it, it reports it beside our server.

    python -m bench.floor_server --port 50052
"""

from __future__ import annotations

import argparse
import asyncio

import grpc

from sentiment.v1 import sentiment_pb2 as pb
from sentiment.v1 import sentiment_pb2_grpc as pb_grpc

ANSWER = pb.PredictResponse(prediction=pb.Prediction(
    label="positive", class_id=2, num_tokens=5,
    scores=[pb.LabelScore(label="negative", probability=0.01), pb.LabelScore(label="neutral", probability=0.03),
            pb.LabelScore(label="positive", probability=0.96)]))


class ConstantServicer(pb_grpc.SentimentServiceServicer):
    async def Predict(self, request, context):
        return ANSWER


async def serve(port: int) -> None:
    server = grpc.aio.server()
    pb_grpc.add_SentimentServiceServicer_to_server(ConstantServicer(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
