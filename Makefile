PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PROTO_OUT := sentiment

.PHONY: install proto proto-check model serve test test-slow bench lint clean

install: $(BIN)/python  ## create .venv and install the project with its test extras
$(BIN)/python: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev,train,bench]'
	touch $(BIN)/python

proto:  ## regenerate the Python protobuf and gRPC modules from protos/
	$(BIN)/python -m grpc_tools.protoc -Iprotos --python_out=. --pyi_out=. --grpc_python_out=. protos/sentiment/v1/sentiment.proto

proto-check: proto  ## fail when the committed generated code is stale
	git diff --exit-code -- $(PROTO_OUT)

model: install  ## build the built-in model into its cache directory when missing (~6-10 min on 2 cores)
	$(BIN)/sentiment-build-model

serve: model  ## run the gRPC server and the REST bridge on the built-in model
	$(BIN)/sentiment-serve-all

test: install  ## the test suite (the built-in model's accuracy test runs only where it is built)
	$(BIN)/python -m pytest -q

bench: model  ## throughput benchmark against the seed design; writes bench/results/
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
