"""The Open Inference Protocol (KServe v2): over gRPC on the server's port with the generated stubs, and
over REST on the bridge (/v2/...), against the same core as sentiment.v1. tritonclient's own calls are
in test_tritonclient.py."""

from __future__ import annotations

import json
import struct

import grpc
import jsonschema
import pytest
import requests
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from clients import SentimentClient
from sentiment.oip import grpc_predict_v2_pb2 as oip
from sentiment.oip import grpc_predict_v2_pb2_grpc as oip_grpc
from server.transport.server import set_serving
from tests.support.helpers import LABELS, ServerThread
from tests.support.bridge import BridgeThread

TEXTS = ["i love this film", "terrible awful day", "okay", "the food was good but the service was bad"]


@pytest.fixture(scope="module")
def stub(grpc_server):
    with grpc.insecure_channel(grpc_server.target) as channel:
        yield oip_grpc.GRPCInferenceServiceStub(channel)


@pytest.fixture(scope="module")
def direct(grpc_server):
    with SentimentClient(grpc_server.target) as client:
        return client.predict_batch(TEXTS, return_logits=True)


def text_tensor(texts=TEXTS, **fields) -> oip.ModelInferRequest.InferInputTensor:
    values = dict(name="text", datatype="BYTES", shape=[len(texts)],
                  contents=oip.InferTensorContents(bytes_contents=[t.encode() for t in texts]))
    values.update(fields)
    return oip.ModelInferRequest.InferInputTensor(**values)


def infer_request(*inputs, **fields) -> oip.ModelInferRequest:
    return oip.ModelInferRequest(model_name="sentiment", inputs=list(inputs) or [text_tensor()], **fields)


def outputs_of(response: oip.ModelInferResponse) -> dict:
    """name -> (shape, flat values), from typed contents or raw bytes."""
    found = {}
    for index, tensor in enumerate(response.outputs):
        if response.raw_output_contents:
            raw = response.raw_output_contents[index]
            if tensor.datatype == "BYTES":
                values, offset = [], 0
                while offset < len(raw):
                    (size,) = struct.unpack_from("<I", raw, offset)
                    values.append(raw[offset + 4 : offset + 4 + size].decode())
                    offset += 4 + size
            else:
                code = {"FP32": "f", "INT64": "q"}[tensor.datatype]
                values = list(struct.unpack(f"<{len(raw) // struct.calcsize(code)}{code}", raw))
        else:
            contents = tensor.contents
            values = ([b.decode() for b in contents.bytes_contents] or list(contents.fp32_contents)
                      or list(contents.int64_contents))
        found[tensor.name] = (list(tensor.shape), values)
    return found


def rpc_error(call, request) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call(request, timeout=10)
    return caught.value


# gRPC ----------------------------------------------------------------------------------------------

def test_health_metadata_and_reflection(grpc_server, stub):
    assert stub.ServerLive(oip.ServerLiveRequest()).live
    assert stub.ServerReady(oip.ServerReadyRequest()).ready
    assert stub.ModelReady(oip.ModelReadyRequest(name="sentiment")).ready
    assert stub.ModelReady(oip.ModelReadyRequest(name="sentiment", version="1")).ready
    server = stub.ServerMetadata(oip.ServerMetadataRequest())
    assert server.name == "sentiment-service" and server.version
    metadata = stub.ModelMetadata(oip.ModelMetadataRequest(name="sentiment"))
    assert metadata.name == "sentiment" and list(metadata.versions) == ["1"]
    tensors = lambda items: [(t.name, t.datatype, list(t.shape)) for t in items]  # noqa: E731
    # text_pair: the optional second segment (OIP's metadata has no optional flag)
    assert tensors(metadata.inputs) == [("text", "BYTES", [-1]), ("text_pair", "BYTES", [-1])]
    assert tensors(metadata.outputs) == [("label", "BYTES", [-1]), ("scores", "FP32", [-1, 3]),
                                         ("class_id", "INT64", [-1]), ("logits", "FP32", [-1, 3])]
    with grpc.insecure_channel(grpc_server.target) as channel:
        answers = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10)
        services = {s.name for answer in answers for s in answer.list_services_response.service}
    assert "inference.GRPCInferenceService" in services and "sentiment.v1.SentimentService" in services


def test_readiness_follows_the_standard_health_service(grpc_server, stub):
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(grpc_server.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        check = lambda service: health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status  # noqa: E731
        grpc_server.call(set_serving(grpc_server.running.health, False))
        try:
            assert check("") == health_pb2.HealthCheckResponse.NOT_SERVING
            assert check("inference.GRPCInferenceService") == health_pb2.HealthCheckResponse.NOT_SERVING
            assert not stub.ServerReady(oip.ServerReadyRequest()).ready
            assert not stub.ModelReady(oip.ModelReadyRequest(name="sentiment")).ready
            assert stub.ServerLive(oip.ServerLiveRequest()).live
        finally:
            grpc_server.call(set_serving(grpc_server.running.health, True))
        assert check("inference.GRPCInferenceService") == health_pb2.HealthCheckResponse.SERVING
        assert stub.ServerReady(oip.ServerReadyRequest()).ready


def test_infer_answers_in_order_matching_sentiment_v1(stub, direct):
    response = stub.ModelInfer(infer_request(id="call-7"), timeout=10)
    assert response.model_name == "sentiment" and response.model_version == "1" and response.id == "call-7"
    outputs = outputs_of(response)
    assert list(outputs) == ["label", "scores", "class_id"]
    assert outputs["label"] == ([4], [p.label for p in direct])
    assert outputs["class_id"] == ([4], [p.class_id for p in direct])
    shape, scores = outputs["scores"]
    assert shape == [4, 3]
    assert scores == pytest.approx([p.scores[label] for p in direct for label in LABELS], rel=1e-6)
    (scores_tensor,) = [t for t in response.outputs if t.name == "scores"]
    assert scores_tensor.parameters["labels"].string_param == ",".join(LABELS)


def test_raw_contents_in_give_raw_contents_out(stub, direct):
    raw = b"".join(struct.pack("<I", len(t.encode())) + t.encode() for t in TEXTS)
    request = infer_request(text_tensor(contents=None), raw_input_contents=[raw])
    response = stub.ModelInfer(request, timeout=10)
    assert len(response.raw_output_contents) == 3
    outputs = outputs_of(response)
    assert outputs["label"][1] == [p.label for p in direct]
    assert outputs["class_id"][1] == [p.class_id for p in direct]


def test_requested_outputs_and_parameters_carry_the_options(stub, direct):
    response = stub.ModelInfer(infer_request(outputs=[oip.ModelInferRequest.InferRequestedOutputTensor(name=n)
                                                      for n in ("logits", "label")]), timeout=10)
    outputs = outputs_of(response)
    assert list(outputs) == ["logits", "label"]
    assert outputs["logits"][1] == pytest.approx([v for p in direct for v in p.logits], rel=1e-5)
    request = infer_request()
    request.parameters["return_logits"].bool_param = True
    assert list(outputs_of(stub.ModelInfer(request, timeout=10))) == ["label", "scores", "class_id", "logits"]
    long_text = infer_request(text_tensor(["good " * 300]))
    assert outputs_of(stub.ModelInfer(long_text, timeout=10))["label"][1][0] in LABELS
    long_text.parameters["truncation"].string_param = "reject"
    error = rpc_error(stub.ModelInfer, long_text)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("change, names", [
    (lambda r: setattr(r.inputs[0], "name", "texts"), "'texts'"),
    (lambda r: setattr(r.inputs[0], "datatype", "INT32"), "'text' has datatype INT32"),
    (lambda r: r.inputs[0].shape.append(1), "'text' has shape [4, 1]"),
    (lambda r: r.inputs[0].shape.__setitem__(0, 3), "'text' has shape [3] but 4 elements"),
    (lambda r: r.inputs.append(text_tensor()), "'text'"),
    (lambda r: r.ClearField("inputs"), "'text'"),
    (lambda r: r.inputs[0].contents.bytes_contents.__setitem__(1, b"\xff\xfe"), "element 1 of input 'text'"),
    (lambda r: r.outputs.add(name="probabilities"), "'probabilities'"),
    (lambda r: r.parameters["truncation"].MergeFrom(oip.InferParameter(bool_param=True)), "'truncation'"),
    (lambda r: r.parameters["truncation"].MergeFrom(oip.InferParameter(string_param="sometimes")), "'truncation'"),
    (lambda r: r.inputs[0].contents.bytes_contents.__setitem__(2, b"  "), "text 2 is empty"),
])
def test_wrong_tensors_answer_invalid_argument_naming_them(stub, change, names):
    request = infer_request()
    change(request)
    error = rpc_error(stub.ModelInfer, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert names in error.details()


def test_unknown_model_or_version_is_not_found(stub):
    for call, request in [(stub.ModelInfer, oip.ModelInferRequest(model_name="other", inputs=[text_tensor()])),
                          (stub.ModelInfer, infer_request(model_version="2")),
                          (stub.ModelMetadata, oip.ModelMetadataRequest(name="other")),
                          (stub.ModelReady, oip.ModelReadyRequest(name="sentiment", version="2"))]:
        error = rpc_error(call, request)
        assert error.code() == grpc.StatusCode.NOT_FOUND and "sentiment" in error.details()


# REST ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bridge(grpc_server):
    with BridgeThread(grpc_server.target, max_body_bytes=64 * 1024) as running:
        yield running.url


def json_request(texts=TEXTS, **extra) -> dict:
    return {"inputs": [{"name": "text", "shape": [len(texts)], "datatype": "BYTES", "data": texts}], **extra}


def infer(bridge, body, model="sentiment", **kwargs):
    return requests.post(f"{bridge}/v2/models/{model}/infer", json=body, timeout=10, **kwargs)


def test_rest_health_and_metadata(bridge):
    assert requests.get(f"{bridge}/v2/health/live", timeout=10).json() == {"live": True}
    assert requests.get(f"{bridge}/v2/health/ready", timeout=10).json() == {"ready": True}
    assert requests.get(f"{bridge}/v2/models/sentiment/ready", timeout=10).status_code == 200
    assert requests.get(f"{bridge}/v2/models/sentiment/versions/1/ready", timeout=10).status_code == 200
    server = requests.get(f"{bridge}/v2", timeout=10).json()
    assert server["name"] == "sentiment-service" and "binary_tensor_data" in server["extensions"]
    metadata = requests.get(f"{bridge}/v2/models/sentiment", timeout=10).json()
    assert metadata["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]},
                                  {"name": "text_pair", "datatype": "BYTES", "shape": [-1]}]
    assert {o["name"]: o["shape"] for o in metadata["outputs"]} == {
        "label": [-1], "scores": [-1, 3], "class_id": [-1], "logits": [-1, 3]}
    missing = requests.get(f"{bridge}/v2/models/other", timeout=10)
    assert missing.status_code == 404 and missing.json()["code"] == "NOT_FOUND"
    assert "'other'" in missing.json()["error"]


def test_rest_infer_json_tensors_match_sentiment_v1(bridge, direct):
    response = infer(bridge, json_request(id="abc", parameters={"return_logits": True}))
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert body["model_name"] == "sentiment" and body["model_version"] == "1" and body["id"] == "abc"
    outputs = {o["name"]: o for o in body["outputs"]}
    assert list(outputs) == ["label", "scores", "class_id", "logits"]
    assert outputs["label"]["data"] == [p.label for p in direct]
    assert outputs["class_id"] == {"name": "class_id", "datatype": "INT64", "shape": [4],
                                   "data": [p.class_id for p in direct]}
    assert outputs["scores"]["shape"] == [4, 3] and outputs["scores"]["parameters"] == {"labels": ",".join(LABELS)}
    assert outputs["scores"]["data"] == pytest.approx([p.scores[l] for p in direct for l in LABELS], rel=1e-6)
    nested = json_request(texts=[[t] for t in TEXTS])
    nested["inputs"][0]["shape"] = [4]
    assert infer(bridge, nested).json()["outputs"][0]["data"] == [p.label for p in direct]


def test_rest_binary_tensor_extension(bridge, direct):
    raw = b"".join(struct.pack("<I", len(t.encode())) + t.encode() for t in TEXTS)
    header = json.dumps({"inputs": [{"name": "text", "shape": [4], "datatype": "BYTES",
                                     "parameters": {"binary_data_size": len(raw)}}],
                         "outputs": [{"name": "class_id", "parameters": {"binary_data": True}}, {"name": "label"}]
                         }).encode()
    response = requests.post(f"{bridge}/v2/models/sentiment/infer", data=header + raw, timeout=10,
                             headers={"Inference-Header-Content-Length": str(len(header))})
    assert response.status_code == 200
    split = int(response.headers["Inference-Header-Content-Length"])
    document, binary = json.loads(response.content[:split]), response.content[split:]
    class_id, label = document["outputs"]
    assert class_id["parameters"] == {"binary_data_size": 32} and "data" not in class_id
    assert list(struct.unpack("<4q", binary)) == [p.class_id for p in direct]
    assert label["data"] == [p.label for p in direct]


@pytest.mark.parametrize("body, status, says", [
    (json_request() | {"inputs": [{"name": "texts", "shape": [1], "datatype": "BYTES", "data": ["a"]}]}, 400, "'texts'"),
    (json_request() | {"inputs": [{"name": "text", "shape": [2], "datatype": "INT32", "data": [1, 2]}]}, 400,
     "'text' has datatype INT32"),
    (json_request() | {"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "data": [1, 2]}]}, 422,
     "input 'text'"),
    (json_request() | {"outputs": [{"name": "probabilities"}]}, 400, "'probabilities'"),
    (json_request() | {"parameters": {"truncation": "sometimes"}}, 400, "'truncation'"),
    ({"inputs": "text"}, 422, "list"),
    ([1, 2], 422, "object"),
])
def test_rest_errors_map_like_predict_and_name_the_tensor(bridge, body, status, says):
    response = infer(bridge, body)
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("application/json")
    assert says in response.json()["error"]


@pytest.mark.parametrize("change, field", [
    ({"shape": [2**70]}, "shape"),                      # past int64, the proto field's type
    ({"datatype": "INT64", "data": [2**70]}, "data"),
    ({"datatype": "UINT8", "data": [256]}, "data"),
    ({"datatype": "INT8", "data": [-129]}, "data"),
    ({"datatype": "BYTES!"}, "datatype"),
])
def test_rest_values_outside_their_types_are_refused_with_422_not_a_crash(bridge, change, field):
    tensor = {"name": "text", "shape": [1], "datatype": "BYTES", "data": ["good"]} | change
    response = infer(bridge, json_request() | {"inputs": [tensor]})
    assert response.status_code == 422, response.text
    assert field in response.json()["field"]


def test_rest_an_integral_float_is_an_integer(bridge):
    """JSON has one number type: a shape of [1.0] is [1], as JSON Schema's "integer" reads it."""
    tensor = {"name": "text", "shape": [1.0], "datatype": "BYTES", "data": ["good"]}
    assert infer(bridge, json_request() | {"inputs": [tensor]}).status_code == 200


def test_rest_the_schema_states_the_models_signature_and_the_server_holds_it(bridge):
    """/openapi.json's infer request is this model's: the metadata's input and outputs, one input, known
    options. What it calls invalid, the bridge refuses (4xx); what it calls valid here is answered."""
    document = requests.get(f"{bridge}/openapi.json", timeout=10).json()
    schemas = document["components"]["schemas"]
    metadata = requests.get(f"{bridge}/v2/models/sentiment", timeout=10).json()
    tensor = schemas["InferInputIn"]["properties"]
    assert tensor["name"]["enum"] == [i["name"] for i in metadata["inputs"]]
    assert tensor["datatype"]["enum"] == list(dict.fromkeys(i["datatype"] for i in metadata["inputs"]))
    assert schemas["InferRequestedOutputIn"]["properties"]["name"]["enum"] == [o["name"] for o in metadata["outputs"]]

    def valid(body) -> bool:
        schema = {"$ref": "#/components/schemas/InferRequestIn", "components": {"schemas": schemas}}
        return jsonschema.Draft202012Validator(schema).is_valid(body)

    text = {"name": "text", "shape": [1], "datatype": "BYTES", "data": ["good"]}
    refused = [
        {"inputs": [text | {"name": "texts"}]},
        {"inputs": [text | {"datatype": "FP32", "data": [1.0]}]},
        {"inputs": [text | {"shape": [1, 1]}]},
        {"inputs": [text | {"shape": [-1]}]},
        {"inputs": [{k: v for k, v in text.items() if k != "data"}]},
        {"inputs": [text | {"data": [1]}]},
        {"inputs": [{k: v for k, v in text.items() if k != "data"} | {"parameters": {"binary_data_size": False}}]},
        {"inputs": []},
        {"inputs": [text, text]},
        {"inputs": [text | {"name": "text_pair"}]},  # a pair without its text
        {"inputs": [text], "outputs": [{"name": "probabilities"}]},
        {"inputs": [text], "parameters": {"truncation": "sometimes"}},
        {"inputs": [text], "parameters": {"return_logits": "yes"}},
        {"inputs": [text], "parameters": {"binary_data_output": "no"}},
        {"inputs": [text], "outputs": [{"name": "label", "parameters": {"binary_data": "x"}}]},
    ]
    for body in refused:
        assert not valid(body), body
        assert infer(bridge, body).status_code in (400, 422), body
    for body in ({"inputs": [text]}, {"inputs": [text, text | {"name": "text_pair"}]},
                 {"inputs": [text], "parameters": {"truncation": "chunk", "return_logits": True}},
                 {"inputs": [text], "outputs": [{"name": "class_id", "parameters": {"binary_data": False}}]}):
        assert valid(body), body
        assert infer(bridge, body).status_code == 200, body


def test_rest_malformed_json_and_unknown_model(bridge):
    response = requests.post(f"{bridge}/v2/models/sentiment/infer", data="{nope", timeout=10)
    assert response.status_code == 400 and response.json()["code"] == "BAD_REQUEST"
    response = infer(bridge, json_request(), model="other")
    assert response.status_code == 404 and response.json()["code"] == "NOT_FOUND"


def test_rest_v2_is_in_the_openapi_document(bridge):
    document = requests.get(f"{bridge}/openapi.json", timeout=10).json()
    schemas = document["components"]["schemas"]

    def check(instance, ref):
        jsonschema.validate(instance, {"$ref": f"#/components/schemas/{ref}", "components": {"schemas": schemas}})

    check(json_request(), "InferRequestIn")
    check(infer(bridge, json_request()).json(), "InferResponseOut")
    check(infer(bridge, json_request(), model="other").json(), "OipErrorOut")
    check(requests.get(f"{bridge}/v2/models/sentiment", timeout=10).json(), "ModelMetadataOut")
    check(requests.get(f"{bridge}/v2", timeout=10).json(), "ServerMetadataOut")
    check(requests.get(f"{bridge}/v2/health/live", timeout=10).json(), "LiveOut")
    check(requests.get(f"{bridge}/v2/health/ready", timeout=10).json(), "ReadyOut")
    assert {"/v2/health/live", "/v2/health/ready", "/v2/models/{name}", "/v2/models/{name}/ready",
            "/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer"} <= set(document["paths"])
    assert set(document["paths"]["/v2/models/{name}/infer"]["post"]["responses"]) >= {"200", "400", "404", "422", "503"}


def test_rest_v2_needs_the_token_except_for_health(grpc_server):
    with BridgeThread(grpc_server.target, auth_token="s3cret") as secured:
        assert infer(secured.url, json_request()).status_code == 401
        assert requests.get(f"{secured.url}/v2/models/sentiment", timeout=10).status_code == 401
        assert infer(secured.url, json_request(), headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert requests.get(f"{secured.url}/v2/health/ready", timeout=10).status_code == 200
        assert requests.get(f"{secured.url}/v2/models/sentiment/ready", timeout=10).status_code == 200


def test_rest_probes_say_false_and_infer_503_when_the_server_is_down():
    from tests.support.helpers import refused_port

    with refused_port() as port, BridgeThread(f"127.0.0.1:{port}", timeout_seconds=2.0) as dead:
        for path, key in (("/v2/health/live", "live"), ("/v2/health/ready", "ready"),
                          ("/v2/models/sentiment/ready", "ready")):
            response = requests.get(f"{dead.url}{path}", timeout=10)
            assert (response.status_code, response.json()) == (503, {key: False})
        response = infer(dead.url, json_request())
        assert response.status_code == 503 and response.json()["code"] == "UNAVAILABLE"


# A model named on the command line (--model NAME:VERSION=SOURCE) ---------------------------------------

@pytest.fixture(scope="module")
def named(tiny_model_dir, classifier):
    """A server of the tiny model named ``reviews``, version ``7``, from the flag as a user writes it; and a
    bridge in front of it."""
    from server.settings import load_settings

    settings = load_settings(["--model", f"reviews:7={tiny_model_dir}", "--host", "127.0.0.1", "--port", "0",
                              "--metrics-port", "0", "--dtype", "float32"])
    with ServerThread(settings, classifier) as server, BridgeThread(server.target) as bridge:
        yield server, bridge.url


def status_of(call, request) -> str:
    try:
        call(request, timeout=10)
    except grpc.RpcError as error:
        return error.code().name
    return "OK"


def test_a_custom_model_name_and_version_answer_over_grpc_and_others_are_not_found(named):
    server, _ = named
    with grpc.insecure_channel(server.target) as channel:
        stub = oip_grpc.GRPCInferenceServiceStub(channel)
        for version in ("", "7"):
            metadata = stub.ModelMetadata(oip.ModelMetadataRequest(name="reviews", version=version), timeout=10)
            assert (metadata.name, list(metadata.versions)) == ("reviews", ["7"])
            assert stub.ModelReady(oip.ModelReadyRequest(name="reviews", version=version), timeout=10).ready
            reply = stub.ModelInfer(oip.ModelInferRequest(model_name="reviews", model_version=version,
                                                          inputs=[text_tensor()]), timeout=10)
            assert (reply.model_name, reply.model_version) == ("reviews", "7")
            assert outputs_of(reply)["label"][1][0] in LABELS
        for name, version in (("sentiment", ""), ("sentiment", "1"), ("reviews", "1"), ("other", "7")):
            assert status_of(stub.ModelMetadata, oip.ModelMetadataRequest(name=name, version=version)) == "NOT_FOUND"
            assert status_of(stub.ModelReady, oip.ModelReadyRequest(name=name, version=version)) == "NOT_FOUND"
            assert status_of(stub.ModelInfer, oip.ModelInferRequest(model_name=name, model_version=version,
                                                                    inputs=[text_tensor()])) == "NOT_FOUND"


def test_a_custom_model_name_and_version_answer_through_the_bridges_v2_and_others_are_404(named):
    _, bridge = named
    for model in ("/v2/models/reviews", "/v2/models/reviews/versions/7"):
        metadata = requests.get(f"{bridge}{model}", timeout=10)
        assert metadata.status_code == 200 and (metadata.json()["name"], metadata.json()["versions"]) == ("reviews", ["7"])
        assert requests.get(f"{bridge}{model}/ready", timeout=10).json() == {"ready": True}
        answer = requests.post(f"{bridge}{model}/infer", json=json_request(), timeout=10)
        assert answer.status_code == 200, answer.text
        assert (answer.json()["model_name"], answer.json()["model_version"]) == ("reviews", "7")
    for model in ("/v2/models/sentiment", "/v2/models/sentiment/versions/1", "/v2/models/reviews/versions/1"):
        for response in (requests.get(f"{bridge}{model}", timeout=10), requests.get(f"{bridge}{model}/ready", timeout=10),
                         requests.post(f"{bridge}{model}/infer", json=json_request(), timeout=10)):
            assert (response.status_code, response.json()["code"]) == (404, "NOT_FOUND"), (model, response.text)


# What the server does not implement -----------------------------------------------------------------------

# Triton's extensions of GRPCInferenceService that tritonclient calls (README: "Not implemented"); the model
# repository extension is implemented (tests/server/repository/)
UNARY_EXTENSIONS = ("ModelConfig", "ModelStatistics",
                    "SystemSharedMemoryStatus", "SystemSharedMemoryRegister", "SystemSharedMemoryUnregister",
                    "CudaSharedMemoryStatus", "CudaSharedMemoryRegister", "CudaSharedMemoryUnregister",
                    "TraceSetting", "LogSettings")


@pytest.mark.parametrize("rpc", [*UNARY_EXTENSIONS, "ModelStreamInfer"])
def test_the_protocol_extensions_the_server_lacks_answer_unimplemented(grpc_server, rpc):
    """An empty request message is valid for each of them (every field default), so the status is about the
    method alone: UNIMPLEMENTED, and the server goes on serving."""
    path = f"/inference.GRPCInferenceService/{rpc}"
    with grpc.insecure_channel(grpc_server.target) as channel:
        if rpc == "ModelStreamInfer":
            call = lambda request, timeout: list(channel.stream_stream(path)(iter([request]), timeout=timeout))  # noqa: E731
        else:
            call = channel.unary_unary(path)
        assert status_of(call, b"") == "UNIMPLEMENTED"
        assert oip_grpc.GRPCInferenceServiceStub(channel).ServerLive(oip.ServerLiveRequest(), timeout=10).live


def test_every_rpc_of_the_servers_protocol_file_is_implemented():
    """The unimplemented parts are the extensions above, never an RPC the server's own .proto declares (the
    generated base class would answer it UNIMPLEMENTED)."""
    from server.transport.oip_servicer import InferenceServicer

    declared = [m.name for m in oip.DESCRIPTOR.services_by_name["GRPCInferenceService"].methods]
    assert declared and not set(declared) & {*UNARY_EXTENSIONS, "ModelStreamInfer"}
    assert {"RepositoryIndex", "RepositoryModelLoad", "RepositoryModelUnload"} <= set(declared)
    base = oip_grpc.GRPCInferenceServiceServicer
    assert [name for name in declared if getattr(InferenceServicer, name) is getattr(base, name)] == []
