"""Code that some mutants add to the request path (where the bug is more than an edit of one line)."""

from __future__ import annotations

import grpc


class AnswerEveryMethod(grpc.GenericRpcHandler):
    """A catch-all handler (one that logs or forwards unknown calls, say): every method the server has no
    handler for is answered OK with an empty message, so no client ever hears UNIMPLEMENTED."""

    def service(self, handler_call_details):
        async def answer(request, context):
            return b""

        return grpc.unary_unary_rpc_method_handler(answer)
