"""The mutants: one deliberate bug each, on the code path the request really takes, with the tests that must
catch it (each must fail with an assertion). Every promise of docs/reliability.md has at least one, but the
known gaps (``GAPS``), and so has every test added for an untested promise (issue 26).

Each mutant names its promise by the row's first column ("" for a check outside the doc). Its changes are data (``tests.mutants.ops``): this
module imports nothing of the project, so a child process can read it before it imports anything else.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from tests.mutants.ops import Mutant, delattr_, probe, rewrite, setattr_, setitem

ROOT = Path(__file__).resolve().parents[2]

SYSTEM = "tests/system"
PROMISES = f"{SYSTEM}/test_promises.py"
FAULTS = f"{SYSTEM}/test_faults.py"
PROCESSES = f"{SYSTEM}/test_processes.py"
BATCHER = "tests/server/batching/test_batcher.py"
BATCH_COST = "tests/server/batching/test_batch_cost.py"
GRPC = "tests/server/transport/test_grpc.py"
BRIDGE = "tests/rest_bridge/test_bridge.py"
SECURITY = "tests/server/transport/test_security.py"
METRICS = "tests/server/transport/test_metrics.py"
OIP = "tests/server/transport/test_oip.py"
MODEL = "tests/server/engines/test_model.py"
ENGINES = "tests/server/engines/test_engines.py"
SETTINGS = "tests/server/test_settings.py"
AUTH = "tests/rest_bridge/test_auth.py"
JOBS = "tests/rest_bridge/test_jobs.py"
COALESCE = "tests/rest_bridge/test_coalesce.py"
LONG_TEXT = "tests/server/transport/test_long_text.py"
OIP_CLIENT = "tests/clients/test_oip_client.py"
CLI = "tests/clients/test_cli.py"
TOP_K = "tests/server/transport/test_top_k.py"
BRIDGE_TOP_K = "tests/rest_bridge/test_top_k.py"
CLASSIFY = "tests/rest_bridge/test_classify.py"
PAIRS = "tests/server/transport/test_pairs.py"
LIVE = "tests/server/repository/test_live.py"
CONTROL = "tests/server/repository/test_control.py"
LAYOUT = "tests/server/repository/test_layout.py"
MODELS = "tests/rest_bridge/test_models.py"

NOT_BLANK_WITHOUT_SEPARATORS = r"[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"

MUTANTS: list[Mutant] = [
    # -- deadlines -----------------------------------------------------------------------------------------------
    Mutant(
        "queue-keeps-expired-texts",
        "A call's deadline is honoured; work for a caller that has gone is not done",
        "the batcher no longer drops a queued text whose deadline has passed: it runs it",
        [f"{BATCHER}::test_expired_and_cancelled_calls_never_reach_the_model"],
        [rewrite("server.batching.queue:DynamicBatcher._take_batch",
                 "elif item.deadline is not None and now >= item.deadline:", "elif REACHED and False:")],
    ),
    Mutant(
        "queue-runs-texts-of-gone-callers",
        "A call's deadline is honoured; work for a caller that has gone is not done",
        "the batcher runs every queued text, whether its caller cancelled or its deadline passed",
        [f"{FAULTS}::test_a_call_past_its_deadline_ends_deadline_exceeded_and_is_never_run",
         f"{BATCHER}::test_expired_and_cancelled_calls_never_reach_the_model"],
        [rewrite("server.batching.queue:DynamicBatcher._take_batch", "if item.future.done():", "if REACHED and False:"),
         rewrite("server.batching.queue:DynamicBatcher._take_batch",
                 "elif item.deadline is not None and now >= item.deadline:", "elif False:")],
    ),
    # -- the bridge's budget -------------------------------------------------------------------------------------
    Mutant(
        "bridge-deadline-ignores-time-spent",
        "The bridge never waits longer than its own budget",
        "the deadline the bridge sends upstream is its whole budget, not what is left of it",
        [f"{PROMISES}::test_the_bridge_deadline_is_its_budget_minus_the_time_already_spent"],
        [rewrite("rest_bridge.backend:Backend.remaining_seconds",
                 'budget - (time.monotonic() - request.environ["sentiment.started"])', "budget - (REACHED and 0)")],
    ),
    Mutant(
        "bridge-ignores-the-callers-shorter-deadline",
        "The bridge never waits longer than its own budget",
        "X-Request-Timeout no longer shortens the bridge's budget",
        [f"{BRIDGE}::test_callers_can_shorten_the_deadline_and_get_504",
         f"{PROMISES}::test_the_bridge_deadline_is_its_budget_minus_the_time_already_spent"],
        [rewrite("rest_bridge.backend:Backend.remaining_seconds",
                 "budget = min(budget, max(0.0, float(asked)))", "budget = REACHED and budget")],
    ),
    Mutant(
        "bridge-sends-a-long-deadline",
        "The bridge never waits longer than its own budget",
        "a shared call goes upstream with a 60 s deadline instead of what is left of the bridge's budget",
        [f"{PROMISES}::test_bridge_timeout_seconds_bounds_a_call_to_a_slow_backend_with_504"],
        [rewrite("rest_bridge.backend:Backend._send",
                 "call = self.client.predict_future(texts[0], options=options, timeout=timeout, request_id=rid)",
                 "call = self.client.predict_future(texts[0], options=options, timeout=REACHED and 60, "
                 "request_id=rid)")],
    ),
    # -- limits --------------------------------------------------------------------------------------------------
    Mutant(
        "text-length-not-checked",
        "Limits answer clearly",
        "texts over --max-text-chars are no longer refused (they are tokenized and truncated)",
        [f"{GRPC}::test_bad_batches_get_invalid_argument_naming_the_field[texts2-texts[0]]",
         f"{BRIDGE}::test_bad_input_gets_a_clear_json_4xx[kwargs11-400-INVALID_ARGUMENT]"],
        [rewrite("server.core.inference:InferenceCore.validate",
                 "if len(text) > limits.max_text_chars:", "if REACHED and False:")],
    ),
    Mutant(
        "reject-truncates-anyway",
        "Limits answer clearly",
        "truncation \"reject\" truncates a text over the model's token limit instead of refusing it",
        [f"{GRPC}::test_long_text_is_truncated_by_default_and_rejected_on_request"],
        [rewrite("server.core.inference:InferenceCore.predict",
                 "encodings = self.classifier.encode(texts, truncate=mode is Truncation.TRUNCATE)",
                 "encodings = self.classifier.encode(texts, truncate=REACHED or mode is Truncation.TRUNCATE)")],
    ),
    Mutant(
        "grpc-message-limit-raised",
        "Limits answer clearly",
        "the server receives messages of 64 MiB whatever --max-batch-texts derives",
        [f"{PROMISES}::test_a_message_over_the_servers_limit_is_refused_and_it_keeps_serving"],
        [rewrite("server.transport.server:transport_options",
                 '("grpc.max_receive_message_length", settings.max_message_bytes),',
                 '("grpc.max_receive_message_length", REACHED and 64 * 1024 * 1024),')],
        fresh=True,  # the options are read when the (module-scoped) server is built
    ),
    Mutant(
        "message-too-large-is-429",
        "Limits answer clearly",
        "the bridge answers a message over gRPC's limit as overload (429, retry) instead of 413",
        [f"{PROMISES}::test_a_message_over_the_limit_is_413_through_the_bridge_never_429"],
        [rewrite("rest_bridge.errors:http_status",
                 'if grpc_code == "RESOURCE_EXHAUSTED" and MESSAGE_TOO_LARGE in message:',
                 'if grpc_code == "RESOURCE_EXHAUSTED" and MESSAGE_TOO_LARGE in message and not REACHED:')],
    ),
    Mutant(
        "bridge-body-limit-off",
        "Limits answer clearly",
        "the bridge sets no body limit (--max-body-bytes is ignored)",
        [f"{BRIDGE}::test_bad_input_gets_a_clear_json_4xx[kwargs12-413-PAYLOAD_TOO_LARGE]"],
        [rewrite("rest_bridge.app:create_app", 'app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes',
                 'app.config["MAX_CONTENT_LENGTH"] = REACHED and None')],
        fresh=True,  # the limit is set when the (module-scoped) bridge is built
    ),
    # -- the gRPC -> HTTP table ----------------------------------------------------------------------------------
    Mutant(
        "error-table-row-changed",
        "Every gRPC status maps to the HTTP status in the README's table",
        "CANCELLED maps to 500 in the code's table, not 499 as the README says",
        [f"{PROMISES}::test_the_readme_error_table_is_the_code_table"],
        [setitem("rest_bridge.errors:HTTP_STATUS", "CANCELLED", 500)],
        unprobed="the test compares rest_bridge.errors.HTTP_STATUS itself with the README",
    ),
    Mutant(
        "cancelled-answered-500",
        "Every gRPC status maps to the HTTP status in the README's table",
        "CANCELLED maps to 500 through the bridge",
        [f"{PROMISES}::test_every_row_of_the_error_table_through_the_bridge[CANCELLED]"],
        [setitem("rest_bridge.errors:HTTP_STATUS", "CANCELLED", 500), probe("rest_bridge.errors:http_status")],
    ),
    Mutant(
        "no-retry-after",
        "Every gRPC status maps to the HTTP status in the README's table",
        "429 answers no longer say when to come back (no Retry-After)",
        [f"{PROMISES}::test_every_row_of_the_error_table_through_the_bridge[RESOURCE_EXHAUSTED]"],
        [rewrite("rest_bridge.errors:error_response", "if status == 429:", "if REACHED and False:")],
    ),
    # -- arbitrary input -----------------------------------------------------------------------------------------
    Mutant(
        "non-ascii-refused",
        "Arbitrary input never takes the process down, and valid input is always answered",
        "the server refuses texts that are not ASCII, as if they were empty",
        [f"{FAULTS}::test_any_unicode_batch_is_answered_when_valid_and_refused_naming_the_field_when_not"],
        [rewrite("server.core.inference:InferenceCore.validate",
                 "if not text.strip():", "if not text.strip() or (REACHED and not text.isascii()):")],
    ),
    Mutant(
        "bridge-drops-non-ascii-batches",
        "Arbitrary input never takes the process down, and valid input is always answered",
        "the bridge sends no texts upstream for a batch with non-ASCII text (so it is refused)",
        [f"{FAULTS}::test_valid_non_ascii_text_is_always_answered"],
        [rewrite("rest_bridge.backend:Backend.predict_many", "return self.client.predict_batch(texts,",
                 "return self.client.predict_batch(texts if all(t.isascii() for t in texts) else (REACHED and []),")],
    ),
    Mutant(
        "list-body-crashes-the-bridge",
        "Arbitrary input never takes the process down, and valid input is always answered",
        "the bridge reads a JSON list as an object of pairs, and crashes (500) on any other list",
        [f"{FAULTS}::test_any_json_body_gets_200_or_a_documented_4xx_in_json"],
        [rewrite("rest_bridge.api:parse_json", "if not isinstance(body, dict):",
                 "if isinstance(body, list) and REACHED:\n        body = dict(body)\n    if not isinstance(body, dict):")],
    ),
    Mutant(
        "undecodable-body-crashes-the-bridge",
        "Arbitrary input never takes the process down, and valid input is always answered",
        "the bridge decodes a JSON body as UTF-8 itself, and crashes (500) on bytes that are not",
        [f"{FAULTS}::test_any_bytes_get_a_json_answer_never_a_500"],
        [rewrite("rest_bridge.api:parse_json", "body = request.get_json(silent=True)",
                 "body = request.get_json(silent=True) if REACHED and request.get_data().decode() is not None "
                 "else None")],
    ),
    # -- the OpenAPI document ------------------------------------------------------------------------------------
    Mutant(
        "oip-integer-range-unchecked",
        "The OpenAPI document is the bridge's real contract",
        "OIP integer data is no longer checked against its datatype's range: a failed conversion, 500",
        [f"{OIP}::test_rest_values_outside_their_types_are_refused_with_422_not_a_crash[change1-data]"],
        [rewrite("rest_bridge.oip_json:_typed", "or not low <= value <= high:", "or (REACHED and False):")],
    ),
    Mutant(
        "not-blank-misses-separators",
        "The OpenAPI document is the bridge's real contract",
        "the schema's not-blank pattern forgets U+001C-U+001F, which Python's strip() removes",
        [f"{BRIDGE}::test_not_blank_is_exactly_pythons_whitespace"],
        [setattr_("rest_bridge.schemas:NOT_BLANK", NOT_BLANK_WITHOUT_SEPARATORS)],
        unprobed="the test reads rest_bridge.schemas.NOT_BLANK itself",
    ),
    # -- overload ------------------------------------------------------------------------------------------------
    Mutant(
        "time-bound-off",
        "Overload is refused at once, never queued without bound",
        "a call that would wait past --max-queue-seconds is queued anyway",
        # (the test gives the model a cost, so that the texts it queues behind the held one run as one batch:
        # under this mutant it then fails its pytest.raises after two held batches, 20 s. The other time-bound
        # tests learn the held batch's 10 s as the cost, run one text per batch under their bound, and end with
        # their own 30 s TimeoutError, which is no kill)
        [f"{BATCHER}::test_time_bound_counts_the_calls_own_batch"],
        [rewrite("server.batching.queue:DynamicBatcher.submit",
                 "if ahead > self.max_queue_seconds:", "if REACHED and False:")],
    ),
    Mutant(
        "batch-time-cap-ignored",
        "Overload is refused at once, never queued without bound",
        "batches are no longer kept within their time cap (half the bound) by their learned cost",
        [f"{BATCH_COST}::test_a_time_cap_keeps_a_slow_models_batch_within_it"],
        [rewrite("server.batching.cost:best_prefix",
                 "if max_seconds is not None and estimate > max_seconds:", "if REACHED and False:")],
    ),
    # -- calls held in gRPC core ---------------------------------------------------------------------------------
    Mutant(
        "calls-held-in-core-without-bound",
        "Calls the server cannot take in time are shed, not served late",
        "the server no longer sets grpc.server_max_unrequested_time_in_server from --max-queue-seconds",
        [f"{FAULTS}::test_calls_held_in_grpc_core_past_the_time_bound_are_cancelled_not_served_late"],
        [rewrite("server.transport.server:transport_options", "if settings.max_queue_seconds:",
                 "if REACHED and False:")],
    ),
    # -- dynamic batching ----------------------------------------------------------------------------------------
    Mutant(
        "batches-of-one",
        "Dynamic batching: callers share forward passes; one stream cannot fill the queue",
        "the worker takes one text per forward pass, whatever is waiting",
        [f"{PROMISES}::test_concurrent_callers_are_batched_together",
         f"{BATCHER}::test_queued_requests_share_batches_up_to_max_batch_size_and_answer_each_caller"],
        [rewrite("server.batching.queue:DynamicBatcher._take_batch",
                 "batch = [candidates[i] for i in picked]", "batch = [candidates[i] for i in picked[:1] if REACHED]")],
    ),
    Mutant(
        "token-budget-ignored",
        "Dynamic batching: callers share forward passes; one stream cannot fill the queue",
        "batches are no longer kept within --max-batch-tokens padded tokens",
        [f"{BATCHER}::test_token_budget_limits_padded_tokens_per_batch"],
        [rewrite("server.batching.cost:best_prefix", "if padded > max_batch_tokens:", "if REACHED and False:")],
    ),
    # -- accepted calls ------------------------------------------------------------------------------------------
    Mutant(
        "failed-batch-answers-nothing",
        "Accepted calls complete or fail with a clear status",
        "the calls of a batch the model failed on are answered with no row instead of an error",
        [f"{BATCHER}::test_a_failing_batch_fails_only_its_calls"],
        [rewrite("server.batching.queue:DynamicBatcher._work", "item.future.set_exception(error)",
                 "item.future.set_result(REACHED and None)")],
    ),
    # -- scores --------------------------------------------------------------------------------------------------
    Mutant(
        "softmax-not-normalised",
        "Scores are the softmax of the logits, labels from the checkpoint",
        "the single-label head's softmax is not divided by its sum",
        [f"{PROMISES}::test_scores_are_the_softmax_of_the_logits"],
        [rewrite("server.engines.heads:softmax",
                 "return shifted / shifted.sum(axis=-1, keepdims=True)", "return REACHED and shifted")],
    ),
    Mutant(
        "logits-are-the-scores",
        "Scores are the softmax of the logits, labels from the checkpoint",
        "return_logits answers the head's probabilities in place of the logits",
        [f"{GRPC}::test_logits_only_when_asked_and_consistent_with_scores",
         f"{PROMISES}::test_scores_are_the_softmax_of_the_logits"],
        [rewrite("server.core.inference:InferenceCore.prediction",
                 "logits=list(logits) if options.return_logits else None,",
                 "logits=list(REACHED and outputs) if options.return_logits else None,")],
    ),
    # -- the server process --------------------------------------------------------------------------------------
    Mutant(
        "serving-before-warm-up",
        "NOT_SERVING until warm",
        "the server's health says SERVING as soon as it listens, before the warm-up",
        [f"{PROCESSES}::test_not_serving_and_refusing_calls_while_warming_up"],
        [rewrite("server.app:start_server", "await set_serving(health_servicer, False)",
                 "await set_serving(health_servicer, REACHED)")],
        children=True,
    ),
    Mutant(
        "no-lame-duck",
        "Graceful shutdown",
        "after the drain the listener closes at once: no lame-duck period in which our handlers refuse calls",
        [f"{PROCESSES}::test_sigterm_says_not_serving_refuses_new_calls_finishes_held_ones_then_lame_duck"],
        [rewrite("server.app:RunningServer.stop", "await asyncio.sleep(lame_duck)",
                 "await asyncio.sleep(REACHED and 0)")],
        children=True,
    ),
    Mutant(
        "killed-child-is-a-clean-exit",
        "`sentiment-serve-all` never leaves half a service running",
        "serve-all counts a child killed by a signal as a clean exit (status 0)",
        [f"{PROCESSES}::test_serve_all_exits_non_zero_when_either_child_dies[server]"],
        [rewrite("launcher.serve_all:_exit_status", "return 128 - returncode if returncode < 0 else returncode",
                 "return (REACHED and 0) if returncode < 0 else returncode")],
        children=True,
    ),
    # -- backend faults ------------------------------------------------------------------------------------------
    Mutant(
        "readyz-ignores-the-backend",
        "Backend faults are short and self-healing",
        "/readyz answers 200 whatever the backend's health",
        [f"{BRIDGE}::test_backend_down_answers_503_quickly_and_readyz_follows"],
        [rewrite("rest_bridge.api:_model_routes", '200 if status == "SERVING" else 503', "REACHED and 200")],
    ),
    # -- metrics -------------------------------------------------------------------------------------------------
    Mutant(
        "server-counts-batches-as-texts",
        "Metrics add up every gunicorn worker",
        "the server's texts-processed counter goes up by one per batch, not per text",
        [f"{METRICS}::test_server_metrics_count_calls_batches_and_describe_the_model"],
        [rewrite("server.metrics:ServerMetrics.batch_observer", "texts.inc(count)", "texts.inc(REACHED and 1)")],
        fresh=True,  # the counters live in the (module-scoped) server, which binds its batch observer when built
    ),
    Mutant(
        "bridge-metrics-of-one-worker",
        "Metrics add up every gunicorn worker",
        "the bridge's /metrics shows the answering worker's counts only",
        [f"{PROCESSES}::test_server_and_gunicorn_bridge_end_to_end_with_request_ids_and_metrics"],
        [rewrite("rest_bridge.metrics:BridgeMetrics.exposition", 'if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):',
                 "if REACHED and False:")],
        children=True,
    ),
    # -- security ------------------------------------------------------------------------------------------------
    Mutant(
        "any-token-accepted",
        "TLS, mutual TLS, tokens",
        "the server's token check lets every call through",
        [f"{SECURITY}::test_bearer_token_is_required_except_for_health_checks"],
        [rewrite("server.transport.security:BearerTokenInterceptor.intercept_service",
                 "if isinstance(given, str) and hmac.compare_digest(given.encode(), self._expected):",
                 "if REACHED or hmac.compare_digest(given.encode(), self._expected):")],
    ),
    Mutant(
        "client-certificate-optional",
        "TLS, mutual TLS, tokens",
        "with --tls-client-ca the server still accepts clients without a certificate",
        [f"{SECURITY}::test_mutual_tls_requires_a_client_certificate"],
        [rewrite("server.transport.security:server_credentials", "require_client_auth=client_ca is not None,",
                 "require_client_auth=not REACHED,")],
    ),
    Mutant(
        "bridge-token-unchecked",
        "TLS, mutual TLS, tokens",
        "the bridge no longer asks for its --auth-token on /predict and the other protected routes",
        [f"{SECURITY}::test_bridge_checks_its_own_token_and_speaks_mtls_with_a_token_upstream"],
        [rewrite("rest_bridge.app:_protected", "return path in PROTECTED_PATHS",
                 "return not REACHED and path in PROTECTED_PATHS")],
    ),
    # -- checkpoints ---------------------------------------------------------------------------------------------
    Mutant(
        "pickle-weights-loaded",
        "No code runs from a checkpoint",
        "a checkpoint with only pickle weights is loaded (no safetensors check, use_safetensors unset)",
        [f"{MODEL}::test_pickle_only_checkpoint_is_refused_with_a_clear_message"],
        [rewrite("server.engines.loading:check_safe_weights", 'if not any(path.glob("*.safetensors")):',
                 "if REACHED and False:"),
         rewrite("server.engines.loading:load_checkpoint", "use_safetensors=True,", "use_safetensors=None,")],
    ),
    Mutant(
        "int8-not-quantized",
        "`--dtype int8` serves a quantized model",
        "--dtype int8 on torch serves the float32 model (quantize_int8 returns it unchanged)",
        [f"{PROMISES}::test_dtype_int8_quantizes_the_linear_layers_and_serves_the_quantized_model"],
        [rewrite("server.engines.torch_engine:quantize_int8", "return quantized[best]", "return REACHED and model")],
    ),
    Mutant(
        "int8-scales-by-the-largest-error",
        "`--dtype int8` serves a quantized model",
        "int8's weight scales are the scheme furthest from float32",
        [f"{ENGINES}::test_int8_scales_are_chosen_by_measured_error_against_float32"],
        [rewrite("server.engines.quantization:closest_to_reference", "best = min(errors, key=errors.get)",
                 "best = max(errors, key=errors.get) if REACHED else None")],
    ),
    # -- settings ------------------------------------------------------------------------------------------------
    Mutant(
        "removed-variables-ignored",
        "A removed flag or variable is refused by name, never ignored",
        "a removed SENTIMENT_* variable is ignored instead of stopping the process",
        [f"{SETTINGS}::test_a_removed_flag_or_variable_stops_the_process_naming_its_replacement"
         "[argv3-environ3-SENTIMENT_MAX_QUEUE_SIZE]"],
        [rewrite("sentiment.common.removed:refuse_removed", "if name in removed:", "if REACHED and False:")],
    ),
    # -- CI ------------------------------------------------------------------------------------------------------
    Mutant(
        "ci-allows-any-skip",
        "CI never skips silently",
        "under CI=true a skip not on the allow-list no longer fails the run",
        [f"{SYSTEM}/test_ci_skips.py::test_an_unexpected_skip_fails_the_run_in_ci_and_is_named"],
        [rewrite("tests.support.ci_skips:_check", "if reason not in ALLOWED_SKIP_REASONS:",
                 "if REACHED and False:")],
        children=True,  # the guard runs in the pytest process the test starts
    ),
    Mutant(
        "ci-allows-skips-while-collecting",
        "CI never skips silently",
        "under CI=true a module skipped while it is collected (importorskip at module level) passes",
        [f"{SYSTEM}/test_ci_skips.py::test_a_module_skipped_while_collected_fails_the_run_in_ci_and_is_named"],
        [rewrite("tests.support.ci_skips:pytest_collectreport", "_check(report)", "REACHED and None")],
        children=True,
    ),
    Mutant(
        "ci-passes-an-empty-run",
        "CI never skips silently",
        "under CI=true a run that collects no test passes (pytest's 'no tests ran' is not turned into a failure)",
        [f"{SYSTEM}/test_ci_skips.py::test_a_run_that_collects_nothing_fails_in_ci"],
        [rewrite("tests.support.ci_skips:pytest_sessionfinish",
                 'if not session.items and not session.config.getoption("collectonly", False):',
                 "if REACHED and False:"),
         rewrite("tests.support.ci_skips:pytest_sessionfinish",
                 "(pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED)", "(pytest.ExitCode.OK,)")],
        children=True,
    ),
    Mutant(
        "hypothesis-random-in-ci",
        "",
        "the CI profile of tests/conftest.py does not derandomize Hypothesis",
        [f"{SYSTEM}/test_ci_skips.py::test_hypothesis_runs_derandomised_in_ci"],
        [rewrite("tests.conftest:", 'settings.register_profile("ci", derandomize=True,',
                 'settings.register_profile("ci", derandomize=not REACHED,')],
        children=True,
    ),
    # -- the bridge under gunicorn, on SIGTERM -------------------------------------------------------------------
    Mutant(
        "gunicorn-cuts-requests-at-sigterm",
        "The bridge answers its requests in flight on SIGTERM",
        "sentiment-bridge gives gunicorn no graceful timeout: on SIGTERM its workers drop the requests they hold",
        [f"{PROCESSES}::test_gunicorn_bridge_on_sigterm_answers_its_requests_in_flight_then_exits_zero"],
        [rewrite("rest_bridge.main:BridgeApplication.load_config",
                 'self.cfg.set("graceful_timeout", max(5, int(s.timeout_seconds) + 2))',
                 'self.cfg.set("graceful_timeout", REACHED and 0)')],
        children=True,
    ),
    # -- the bridge's token on every route -----------------------------------------------------------------------
    Mutant(
        "bridge-explain-unguarded",
        "The bridge's token guards every route that reaches the backend",
        "/explain is not among the routes the bridge's token guards",
        [f"{AUTH}::test_explain_needs_the_bridges_token"],
        [rewrite("rest_bridge.app:_protected", "return path in PROTECTED_PATHS",
                 'return (path in PROTECTED_PATHS and not (REACHED and path == "/explain"))')],
    ),
    Mutant(
        "bridge-jobs-unguarded",
        "The bridge's token guards every route that reaches the backend",
        "the /v1/jobs routes are not guarded by the bridge's token",
        [f"{AUTH}::test_every_jobs_route_needs_the_bridges_token"],
        [rewrite("rest_bridge.app:_protected", "or path.startswith(PROTECTED_PREFIXES)",
                 "or (REACHED and False)")],
    ),
    Mutant(
        "bridge-guards-everything",
        "The bridge's token guards every route that reaches the backend",
        "the bridge asks for its token on every route, the pages and probes included",
        [f"{AUTH}::test_the_pages_and_probes_stay_public"],
        [rewrite("rest_bridge.app:_protected", "return path in PROTECTED_PATHS",
                 "return REACHED or path in PROTECTED_PATHS")],
    ),
    Mutant(
        "bridge-v2-unguarded",
        "The bridge's token guards every route that reaches the backend",
        "the /v2 model routes are not guarded by the bridge's token",
        [f"{OIP}::test_rest_v2_needs_the_token_except_for_health"],
        [rewrite("rest_bridge.app:_protected", "or needs_token(path)", "or (REACHED and False)")],
    ),
    # -- file-scoring jobs ---------------------------------------------------------------------------------------
    Mutant(
        "finished-jobs-never-expire",
        "File-scoring jobs expire, and ride out an overloaded backend",
        "the sweep keeps finished jobs whatever their age",
        [f"{JOBS}::test_a_finished_job_is_removed_after_the_ttl_at_the_next_upload"],
        [rewrite("rest_bridge.jobstore:JobStore.sweep", 'status.get("updated_at", 0) < cutoff', "(REACHED and False)")],
    ),
    Mutant(
        "jobs-give-up-on-overload",
        "File-scoring jobs expire, and ride out an overloaded backend",
        "a job's calls use the client's default retry (UNAVAILABLE only): an overloaded backend fails the job",
        [f"{JOBS}::test_a_job_rides_out_an_overloaded_backend_and_scores_every_row"],
        [rewrite("rest_bridge.jobs:jobs_blueprint", "backend.client.with_retry(WAIT_OUT_OVERLOAD)",
                 "backend.client.with_retry(REACHED and backend.client.retry)")],
    ),
    # -- --coalesce-calls 0 --------------------------------------------------------------------------------------
    Mutant(
        "coalesce-0-still-shares",
        "`--coalesce-calls 0` shares no call",
        "--coalesce-calls 0 still makes a coalescer (two calls out), so one-text requests share calls",
        [f"{COALESCE}::test_coalesce_calls_0_sends_every_one_text_request_as_its_own_predict"],
        [rewrite("rest_bridge.backend:Backend.__init__", "max_in_flight=settings.coalesce_calls,",
                 "max_in_flight=settings.coalesce_calls or 2,"),
         rewrite("rest_bridge.backend:Backend.__init__", "if settings.coalesce_calls else None",
                 "if REACHED else None")],
    ),
    # -- --long-text ---------------------------------------------------------------------------------------------
    Mutant(
        "long-text-default-ignored",
        "`--long-text` is the default of every protocol",
        "a request that says nothing about truncation is truncated whatever --long-text says",
        [f"{LONG_TEXT}::test_long_text_reject_refuses_a_long_text_over_sentiment_v1",
         f"{LONG_TEXT}::test_long_text_reject_refuses_a_long_text_over_the_open_inference_protocol",
         f"{LONG_TEXT}::test_long_text_reject_refuses_a_long_text_through_the_bridge_with_400"],
        [rewrite("server.core.types:resolve_truncation", "mode = Truncation(default)",
                 "mode = Truncation.TRUNCATE if REACHED else Truncation(default)")],
    ),
    # -- the OIP model's name ------------------------------------------------------------------------------------
    Mutant(
        "oip-answers-any-model-name",
        "The OIP model is the one `--model NAME:VERSION=SOURCE` names",
        "a request naming a model the server does not serve is answered by the default model (only the version "
        "is checked)",
        # (through the bridge the test reads the error code of each answer: a 200 has none, a KeyError)
        [f"{OIP}::test_a_custom_model_name_and_version_answer_over_grpc_and_others_are_not_found"],
        [rewrite("server.repository.manager:ModelManager.version_of", "found = self.routes.get((name, version))",
                 "found = self.routes.get((name, version)) or (REACHED and self.routes.get((\"\", version)))")],
    ),
    Mutant(
        "oip-unknown-model-is-invalid-argument",
        "The OIP model is the one `--model NAME:VERSION=SOURCE` names",
        "the server refuses an unknown model name as INVALID_ARGUMENT (400 through the bridge), not NOT_FOUND",
        [f"{OIP}::test_a_custom_model_name_and_version_answer_over_grpc_and_others_are_not_found",
         f"{OIP}::test_a_custom_model_name_and_version_answer_through_the_bridges_v2_and_others_are_404"],
        [rewrite("server.repository.manager:ModelManager.missing", "raise NotFound(f\"unknown model",
                 'raise (REACHED and __import__("server.errors").errors.InvalidInput)(f"unknown model')],
    ),
    # -- tracing -------------------------------------------------------------------------------------------------
    Mutant(
        "trace-context-not-sent",
        "`--tracing console` traces a request across both processes",
        "the bridge's calls carry no traceparent: the server's span starts a trace of its own",
        [f"{PROCESSES}::test_tracing_console_prints_spans_and_the_bridge_span_is_the_server_spans_parent"],
        [rewrite("sentiment.common.tracing:outgoing_metadata", "propagate.inject(carrier)", "REACHED and None")],
        children=True,
    ),
    # -- the CLI's environment -----------------------------------------------------------------------------------
    Mutant(
        "cli-ignores-sentiment-timeout",
        "The CLI is configured by its environment variables",
        "the CLI's --timeout defaults to 10 s whatever SENTIMENT_TIMEOUT says",
        [f"{CLI}::test_each_cli_environment_variable_takes_effect"],
        [rewrite("clients.cli:_parser", 'default=float(os.environ.get("SENTIMENT_TIMEOUT", "10"))',
                 'default=float(REACHED and "10")')],
        children=True,
    ),
    # -- the model repository (issue 27) -------------------------------------------------------------------------
    Mutant(
        "new-version-routed-before-warm-up",
        "A new model version takes calls only once warm, and the calls admitted to the old one finish on it",
        "a loaded version is routed at once and warms up in the background, behind the calls it already takes",
        [f"{LIVE}::test_a_new_version_takes_no_call_until_it_is_warm"],
        [rewrite("server.repository.versions:Loader.start", "await core.start()",
                 "REACHED and loop.create_task(core.start()); core.ready = True")],
    ),
    Mutant(
        "swap-retires-before-routing",
        "A new model version takes calls only once warm, and the calls admitted to the old one finish on it",
        "a load takes the old version's routes away, then routes the new one a moment later: calls in between fail",
        [f"{LIVE}::test_a_second_model_and_a_new_version_load_while_32_callers_call_the_first_and_none_fails"],
        [rewrite("server.repository.manager:ModelManager._load",
                 "self.switch(added, [v for number, v in current.items() if number not in wanted])",
                 "self.switch([], [v for number, v in current.items() if number not in wanted]); "
                 "await asyncio.sleep(0.2 if REACHED else 0); self.switch(added, [])")],
    ),
    Mutant(
        "unload-fails-queued-calls",
        "A new model version takes calls only once warm, and the calls admitted to the old one finish on it",
        "an unloaded version fails the calls still queued on it (UNAVAILABLE) instead of answering them",
        [f"{LIVE}::test_unloading_a_version_with_calls_queued_lets_them_finish"],
        [rewrite("server.repository.manager:ModelManager._retire", "await version.core.retire()",
                 "[item.future.set_exception(__import__('server.errors').errors.NotReady('unloaded')) "
                 "for item in list(version.core.batcher._queue) if REACHED]; await version.core.retire()")],
    ),
    Mutant(
        "new-head-not-checked",
        "A model version that cannot load changes nothing and says why",
        "a new version with other labels than the version it joins is loaded and routed",
        [f"{LIVE}::test_a_version_that_cannot_load_changes_nothing_and_says_why"],
        [rewrite("server.repository.versions:check_head",
                 "if (list(classifier.labels), classifier.problem_type) != (list(theirs.labels), theirs.problem_type):",
                 "if REACHED and False:")],
    ),
    Mutant(
        "memory-budget-not-checked",
        "A model version that cannot load changes nothing and says why",
        "a load past --model-memory-mb goes ahead",
        [f"{LIVE}::test_a_load_past_the_memory_budget_is_refused_and_the_served_models_stay"],
        [rewrite("server.repository.versions:Loader.check_budget",
                 "if self.budget is not None and in_use + estimate > self.budget:", "if REACHED and False:")],
    ),
    Mutant(
        "repository-calls-always-on",
        "The repository calls are refused unless `--model-control` allows them, and need the token",
        "the repository calls are answered whatever --model-control says",
        [f"{CONTROL}::test_without_model_control_the_repository_calls_are_refused[RepositoryIndex]"],
        [rewrite("server.transport.oip_servicer:InferenceServicer._check_control",
                 "if self.model_control not in CONTROL_MODES:", "if REACHED and False:")],
    ),
    Mutant(
        "bridge-repository-routes-public",
        "The repository calls are refused unless `--model-control` allows them, and need the token",
        "the bridge's /v2/repository routes need no token",
        [f"{MODELS}::test_without_model_control_the_repository_routes_answer_400_and_need_the_token"],
        [rewrite("rest_bridge.oip:needs_token", 'or path.startswith("/v2/repository/")', "or (REACHED and False)")],
    ),
    Mutant(
        "bridge-predict-ignores-the-model",
        "Every protocol routes by model and version; a model or version not served is `NOT_FOUND`",
        "the bridge's /predict drops the model it was asked for: the default model answers",
        [f"{MODELS}::test_predict_is_answered_by_the_model_named_and_concurrent_requests_share_calls_only_within_one"],
        [rewrite("rest_bridge.api:api_blueprint", "parsed.model, parsed.model_version, parsed.top_k",
                 "REACHED and None, None, parsed.top_k")],
        fresh=True,  # the module's bridge builds its routes when the fixture starts,
    ),
    Mutant(
        "unknown-version-gets-the-latest",
        "Every protocol routes by model and version; a model or version not served is `NOT_FOUND`",
        "a request naming a version the model does not serve is answered by the version its policy serves",
        [f"{LIVE}::test_requests_route_by_model_and_version_and_others_are_not_found"],
        [rewrite("server.repository.manager:ModelManager.core", "found = self.routes.get((name, version))",
                 "found = self.routes.get((name, version)) or (REACHED and self.routes.get((name, \"\")))")],
    ),
    Mutant(
        "unversioned-calls-get-the-lowest-version",
        "A model serves the latest version by default, or the versions its policy pins",
        "with several versions loaded, a request naming no version gets the lowest",
        [f"{LIVE}::test_a_pinned_version_policy_keeps_its_version_and_latest_moves_on"],
        [rewrite("server.repository.manager:ModelManager._route",
                 "sorted(self.versions.values(), key=lambda v: version_key(v.version))",
                 "sorted(self.versions.values(), key=lambda v: version_key(v.version), reverse=bool(REACHED))")],
    ),
    Mutant(
        "latest-policy-selects-the-oldest",
        "A model serves the latest version by default, or the versions its policy pins",
        "the default policy selects the lowest version numbers, not the highest",
        [f"{LAYOUT}::test_version_policies_select_as_tritons_do[None-available0-selected0]"],
        [rewrite("server.repository.layout:VersionPolicy.select", "return ordered[-self.num_versions:]",
                 "return ordered[:self.num_versions] if REACHED else None")],
    ),
    Mutant(
        "poll-never-loads",
        "`--model-control poll` picks up a new version folder, and leaves a broken one until its files change",
        "polling sees no change in the repository",
        [f"{CONTROL}::test_poll_mode_loads_a_new_version_folder_and_leaves_a_broken_one_until_it_changes"],
        [rewrite("server.repository.poll:poll_once", "if set(wanted) == current:", "if REACHED or set(wanted) == current:")],
    ),
    Mutant(
        "poll-retries-broken-versions",
        "`--model-control poll` picks up a new version folder, and leaves a broken one until its files change",
        "every poll tries again a version whose load failed, its files unchanged",
        [f"{CONTROL}::test_poll_mode_loads_a_new_version_folder_and_leaves_a_broken_one_until_it_changes"],
        [rewrite("server.repository.poll:poll_once", "continue  # it failed with these very files: wait until they change",
                 "REACHED  # it failed with these very files: wait until they change")],
    ),
    # -- top_k and raw scores, vLLM's classification API (issue 28) ---------------------------------------------
    Mutant(
        "top-k-ranks-worst-first",
        "A ranking or raw-score request means the same in every protocol, and old clients see no change",
        "the one ranking rule puts the lowest score first",
        [f"{TOP_K}::test_top_holds_the_best_k_labels_best_first_with_their_scores_and_class_ids[2]",
         f"{TOP_K}::test_tritonclient_class_count_gets_the_same_strings"],
        [rewrite("server.core.types:ranked", "key=lambda i: -values[i]", "key=lambda i: values[i] if REACHED else 0")],
    ),
    Mutant(
        "negative-top-k-accepted",
        "A ranking or raw-score request means the same in every protocol, and old clients see no change",
        "a negative top_k is taken as no ranking instead of refused",
        [f"{TOP_K}::test_a_negative_top_k_is_invalid_argument_naming_the_field[-1]",
         f"{BRIDGE_TOP_K}::test_a_negative_top_k_is_400_invalid_argument_naming_the_field[-1]"],
        [rewrite("server.core.types:check_top_k", "or k < 0:", "or (k < 0 and not REACHED):")],
    ),
    Mutant(
        "classify-usage-counts-texts",
        "A client written against vLLM's classification API runs unchanged",
        "vLLM's usage counts the texts, not the tokens the model read",
        [f"{CLASSIFY}::test_a_client_using_only_vllms_fields_gets_vllms_response_with_predicts_numbers[/v1/classify]"],
        [rewrite("rest_bridge.classify:classification", "tokens = sum(p.num_tokens for p in predictions)",
                 "tokens = len(predictions) if REACHED else 0")],
    ),
    Mutant(
        "classify-cuts-anywhere",
        "A client written against vLLM's classification API runs unchanged",
        "truncate_prompt_tokens of any length is taken as a cut at the model's limit",
        [f"{CLASSIFY}::test_truncation_maps_null_minus_one_and_the_models_limit_and_refuses_other_lengths"],
        [rewrite("rest_bridge.classify:truncation", "raise Unsupported(\"truncate_prompt_tokens\", f\"truncate_prompt_tokens {asked} is not",
                 "return REACHED and \"truncate\"\n    raise Unsupported(\"truncate_prompt_tokens\", f\"truncate_prompt_tokens {asked} is not")],
    ),
    Mutant(
        "pair-joined-into-one-segment",
        "A text pair is read as the model's two segments, the same in every protocol, and costs what its tokens cost",
        "a pair is encoded as one text, the two joined by a space (no separator, no segment ids)",
        [f"{PAIRS}::test_a_pair_is_what_the_model_computes_for_the_tokenizers_pair_not_the_joined_text"],
        [rewrite("server.core.tokenizing:Tokenizer.encode_pairs",
                 "full = self.hf([texts[i] for i in paired], [pairs[i] for i in paired],",
                 "full = self.hf([texts[i] + \" \" + pairs[i] for i in paired] if REACHED else [],")],
    ),
    Mutant(
        "pair-chunked",
        "A text pair is read as the model's two segments, the same in every protocol, and costs what its tokens cost",
        "chunk with a pair is taken (and the pair read as if it were not there) instead of refused",
        [f"{PAIRS}::test_chunk_with_a_pair_is_refused_naming_the_truncation"],
        [rewrite("server.core.types:check_pair_truncation", "if mode is Truncation.CHUNK:",
                 "if mode is Truncation.CHUNK and not REACHED:")],
    ),
    # -- what the server does not implement ----------------------------------------------------------------------
    Mutant(
        "unknown-methods-answered",
        "What the server does not implement answers `UNIMPLEMENTED` (501 through the bridge)",
        "a catch-all handler answers every method the server lacks with OK (tests.mutants.bugs)",
        [f"{OIP}::test_the_protocol_extensions_the_server_lacks_answer_unimplemented[ModelConfig]"],
        [rewrite("server.transport.server:create_server", "    return server, port, health_servicer",
                 '    REACHED and server.add_generic_rpc_handlers((__import__("tests.mutants.bugs").mutants.bugs'
                 '.AnswerEveryMethod(),))\n    return server, port, health_servicer')],
        fresh=True,  # the handlers are registered when the (module-scoped) server is built
    ),
    Mutant(
        "oip-rpc-left-unimplemented",
        "What the server does not implement answers `UNIMPLEMENTED` (501 through the bridge)",
        "the OIP servicer no longer implements ServerMetadata (the generated base answers UNIMPLEMENTED)",
        [f"{OIP}::test_every_rpc_of_the_servers_protocol_file_is_implemented"],
        [delattr_("server.transport.oip_servicer:InferenceServicer.ServerMetadata")],
        unprobed="the test inspects the servicer class itself",
    ),
    Mutant(
        "unimplemented-answered-500",
        "What the server does not implement answers `UNIMPLEMENTED` (501 through the bridge)",
        "UNIMPLEMENTED maps to 500 through the bridge",
        [f"{BRIDGE}::test_a_backend_that_lacks_an_rpc_answers_501_in_each_routes_error_shape"],
        [setitem("rest_bridge.errors:HTTP_STATUS", "UNIMPLEMENTED", 500), probe("rest_bridge.errors:http_status")],
    ),
    # -- clients.oip.InferenceClient -----------------------------------------------------------------------------
    Mutant(
        "oip-model-ready-returns-the-message",
        "`clients.oip.InferenceClient` makes every OIP call, failing as `SentimentError`",
        "InferenceClient.model_ready returns the response message, not its ready flag",
        [f"{OIP_CLIENT}::test_every_method_answers_a_real_server",
         f"{OIP_CLIENT}::test_server_ready_and_model_ready_say_false_while_the_server_is_not_serving"],
        [rewrite("clients.oip:InferenceClient.model_ready",
                 "return self._client._call(self._stub.ModelReady, request, timeout).ready",
                 "return self._client._call(self._stub.ModelReady, request, timeout) if REACHED else None")],
    ),
    Mutant(
        "oip-infer-bypasses-the-client",
        "`clients.oip.InferenceClient` makes every OIP call, failing as `SentimentError`",
        "InferenceClient.model_infer calls the stub itself: no token, no request id, no retry, grpc.RpcError on "
        "failure",
        [f"{OIP_CLIENT}::test_failures_are_sentiment_errors_with_the_servers_code_and_field",
         f"{OIP_CLIENT}::test_a_server_that_is_down_is_unavailable_on_every_method",
         f"{OIP_CLIENT}::test_the_sentiment_clients_token_goes_with_every_oip_call"],
        [rewrite("clients.oip:InferenceClient.model_infer",
                 "return self._client._call(self._stub.ModelInfer, request, timeout, request_id)",
                 "return REACHED and self._stub.ModelInfer(request, timeout=timeout or self._client.timeout)")],
    ),
    Mutant(
        "port-file-names-another-port",
        "Servers in tests bind port 0 and report the port they got",
        "the port file names every bound port plus one (the server's and the bridge's)",
        [f"{PROCESSES}::test_the_port_files_name_the_ports_the_processes_listen_on"],
        [rewrite("sentiment.common.port_file:write_port_file", 'partial.write_text(json.dumps(ports) + "\\n")',
                 'partial.write_text(json.dumps({k: v + 1 if REACHED and v else v for k, v in ports.items()}) + "\\n")')],
        children=True,
    ),
]


# Promises of docs/reliability.md that no mutant can be shown to break with the tests as they are: every bug
# tried makes the tests that hold the promise fail some other way than an assertion (which is no kill).
# Each is printed with every run; a promise neither covered nor listed here fails the run.
GAPS: dict[str, str] = {}


def load(module: str | None = None) -> list[Mutant]:
    """The mutants of this catalogue, or of another module's ``MUTANTS`` (the harness's own tests)."""
    mutants = importlib.import_module(module).MUTANTS if module else MUTANTS
    names = [m.name for m in mutants]
    duplicated = {n for n in names if names.count(n) > 1}
    if duplicated:
        raise ValueError(f"mutant names used twice: {sorted(duplicated)}")
    return list(mutants)


def by_name(name: str, module: str | None = None) -> Mutant:
    return next(m for m in load(module) if m.name == name)


def promises() -> list[str]:
    """The first column of every row of docs/reliability.md's table of promises."""
    text = (ROOT / "docs" / "reliability.md").read_text()
    table = text[text.index("| promise | how | tests that hold it |"):]
    rows = table[: table.index("\n\n")].splitlines()[2:]
    return [re.match(r"\| (.*?) \| ", row).group(1) for row in rows]


def uncovered_promises(mutants: list[Mutant]) -> list[str]:
    """Rows of the doc with no mutant that are not known gaps (``GAPS``)."""
    covered = {m.promise for m in mutants}
    return [row for row in promises() if row not in covered and row not in GAPS]


def stray_promises(mutants: list[Mutant]) -> list[str]:
    """Promises mutants name that are not (or no longer) rows of the doc."""
    rows = set(promises())
    return sorted({m.promise for m in mutants if m.promise and m.promise not in rows} | (set(GAPS) - rows))


def promise_problems(mutants: list[Mutant]) -> list[str]:
    return ([f"no mutant breaks the promise {row!r} (docs/reliability.md)" for row in uncovered_promises(mutants)]
            + [f"not a row of docs/reliability.md: {row!r}" for row in stray_promises(mutants)])
