"""The calls a tritonclient user makes, run in a process of their own and printed as one JSON object.

tritonclient ships generated ``inference.*`` messages of its own; protobuf refuses a second module
defining the same names in one process, so the tests (which load the server's) run this as a script:

    python tests/support/tritonclient_probe.py grpc|http|http-json HOST:PORT MODEL TEXT...
    python tests/support/tritonclient_probe.py repository-grpc|repository-http HOST:PORT MODEL

The ``repository-*`` form makes the model repository calls (index, unload, load) on MODEL.

    python tests/support/tritonclient_probe.py classification-grpc HOST:PORT MODEL K TEXT...

asks for ``scores`` and ``logits`` as Triton's classification extension returns them
(``InferRequestedOutput(name, class_count=K)``), beside ``scores`` and ``logits`` themselves.

``http`` sends and receives tensors as tritonclient does by default (the binary tensor extension);
``http-json`` uses the JSON tensor format of the protocol."""

from __future__ import annotations

import json
import sys

import numpy as np
from tritonclient.utils import InferenceServerException

OUTPUTS = ("label", "scores", "class_id")


def main(protocol: str, url: str, model: str, texts: list[str]) -> dict:
    if protocol == "grpc":
        import tritonclient.grpc as triton
    else:
        import tritonclient.http as triton
    binary = protocol != "http-json"

    def text_input(name: str = "text", datatype: str = "BYTES", data=None):
        data = np.array([t.encode() for t in texts], dtype=np.object_) if data is None else data
        tensor = triton.InferInput(name, list(data.shape), datatype)
        if protocol == "grpc":
            tensor.set_data_from_numpy(data)
        else:
            tensor.set_data_from_numpy(data, binary_data=binary)
        return tensor

    def outputs(names):
        if protocol == "grpc":
            return [triton.InferRequestedOutput(name) for name in names]
        return [triton.InferRequestedOutput(name, binary_data=binary) for name in names]

    def error_of(call) -> dict:
        try:
            call()
        except InferenceServerException as error:
            return {"status": str(error.status()), "message": error.message()}
        return {}

    client = triton.InferenceServerClient(url)
    if protocol == "grpc":
        server_metadata = client.get_server_metadata(as_json=True)
        model_metadata = client.get_model_metadata(model, as_json=True)
    else:
        server_metadata = client.get_server_metadata()
        model_metadata = client.get_model_metadata(model)
    # tritonclient.http asks for every output in binary when none is listed: the default use
    result = client.infer(model, [text_input()], outputs=None if binary else outputs(OUTPUTS))
    with_logits = client.infer(model, [text_input()], outputs=outputs(["class_id", "logits"]),
                               parameters={"truncation": "truncate"})
    return {
        "live": client.is_server_live(),
        "ready": client.is_server_ready(),
        "model_ready": client.is_model_ready(model),
        "server_metadata": server_metadata,
        "model_metadata": model_metadata,
        # BYTES come back as bytes, or as str from JSON tensors
        "label": [label.decode() if isinstance(label, bytes) else label for label in result.as_numpy("label")],
        "scores": result.as_numpy("scores").tolist(),
        "class_id": result.as_numpy("class_id").tolist(),
        "logits_shape": list(with_logits.as_numpy("logits").shape),
        "logits_outputs": [o["name"] for o in with_logits.get_response(as_json=True)["outputs"]]
        if protocol == "grpc" else [o["name"] for o in with_logits.get_response()["outputs"]],
        "wrong_name": error_of(lambda: client.infer(model, [text_input(name="texts")])),
        "wrong_datatype": error_of(lambda: client.infer(
            model, [text_input(datatype="INT32", data=np.arange(len(texts), dtype=np.int32))])),
        "unknown_model": error_of(lambda: client.infer("no-such-model", [text_input()])),
    }


def repository(protocol: str, url: str, model: str) -> dict:
    """tritonclient's model repository calls, as a user makes them: the index, an unload and a load."""
    if protocol == "grpc":
        import tritonclient.grpc as triton

        def index(**kwargs):
            return [{key: entry.get(key, "") for key in ("name", "version", "state", "reason")}
                    for entry in triton_client.get_model_repository_index(as_json=True, **kwargs).get("models", [])]
    else:
        import tritonclient.http as triton

        def index(**kwargs):
            return [{key: entry.get(key, "") for key in ("name", "version", "state", "reason")}
                    for entry in triton_client.get_model_repository_index(**kwargs)]

    triton_client = triton.InferenceServerClient(url)
    before = index()
    triton_client.unload_model(model)
    after_unload = index()
    triton_client.load_model(model)
    return {"before": before, "after_unload": after_unload, "after_load": index(),
            "model_ready": triton_client.is_model_ready(model)}


def classification(url: str, model: str, count: int, texts: list[str]) -> dict:
    """Two calls over gRPC: the full ``scores`` and ``logits``, then both with ``class_count``; BYTES come back
    as bytes, decoded here."""
    import tritonclient.grpc as triton

    client = triton.InferenceServerClient(url)
    data = np.array([t.encode() for t in texts], dtype=np.object_)
    tensor = triton.InferInput("text", list(data.shape), "BYTES")
    tensor.set_data_from_numpy(data)
    full = client.infer(model, [tensor], outputs=[triton.InferRequestedOutput("scores"),
                                                   triton.InferRequestedOutput("logits")])
    ranked = client.infer(model, [tensor], outputs=[triton.InferRequestedOutput("scores", class_count=count),
                                                     triton.InferRequestedOutput("logits", class_count=count)])
    outputs = {o["name"]: o for o in ranked.get_response(as_json=True)["outputs"]}

    def strings(name):
        return [[element.decode() for element in row] for row in ranked.as_numpy(name)]

    return {"scores": full.as_numpy("scores").tolist(), "logits": full.as_numpy("logits").tolist(),
            "classified_scores": strings("scores"), "classified_logits": strings("logits"),
            "datatypes": {name: o["datatype"] for name, o in outputs.items()},
            "shapes": {name: [int(d) for d in o["shape"]] for name, o in outputs.items()},
            "extensions": client.get_server_metadata(as_json=True).get("extensions", [])}


if __name__ == "__main__":
    if sys.argv[1] == "classification-grpc":
        print(json.dumps(classification(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5:])))
    elif sys.argv[1].startswith("repository-"):
        print(json.dumps(repository(sys.argv[1].removeprefix("repository-"), sys.argv[2], sys.argv[3])))
    else:
        print(json.dumps(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:])))
