# Eddy: the two commands of the README are `make demo` and `make test`.
.PHONY: build demo test test-engine fmt lint services services-down services-status bench bench-compare bench-attacks flamegraphs check

CARGO ?= cargo

build:
	$(CARGO) build --workspace --bins

## Start the broker (Tansu) and check/start PostgreSQL.
services:
	scripts/services.sh up

services-down:
	scripts/services.sh down

services-status:
	scripts/services.sh status

## The fraud pipeline on 100,000 generated events: services up, queries/fraud submitted,
## events produced, counts and a sample printed, everything it started stopped.
demo:
	scripts/demo.sh

## Unit, golden and end-to-end tests (the end-to-end ones need `make services`). Every
## test binary runs even after one fails, so one run reports every failure.
test: services build
	$(CARGO) test --workspace --no-fail-fast

## Format every crate with rustfmt (rustfmt.toml); CI checks it with --check.
fmt:
	$(CARGO) fmt --all

## The tests that need neither the broker nor PostgreSQL: unit tests, the engine's
## tests (engine/tests/engine) and the file-driven SQL cases (tests/windows, tests/match_recognize).
test-engine: build
	$(CARGO) test --workspace --lib --bins --test engine --test cases

## Clippy with the workspace lints (no unwrap/expect outside tests), warnings as errors.
lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## Throughput figures (release build; needs the services for the I/O part). The window
## and MATCH_RECOGNIZE benchmarks generate 10M-row files under target/bench on first use;
## the services part measures the control plane (SHOW QUERIES, a push query's first row) and
## ends with the fraud alerts' latency on the Kafka path; the webhook sink's throughput with
## batches of 1 and 500 rows; the joins (stream–table, PostgreSQL lookup, interval) over the
## 10M-row transactions file; the cost as work grows (--scaling) and the Kafka path on
## rdkafka's MockCluster (--mock-kafka); the PMML models' scoring speed (examples/bench).
bench: services
	$(CARGO) build --release --workspace --bins --examples
	target/release/eddy-bench --services --windows --checkpoints --webhook --joins --scaling --mock-kafka
	target/release/examples/bench

## /healthcheck and SHOW STREAMS answer times while hostile requests run (issue 15).
bench-attacks: services build
	python3 scripts/bench_attacks.py target/debug/eddy

## Eddy, Flink SQL (PyFlink) and DuckDB side by side on the window benchmark files, with
## the machine's state beside each figure (Java 17 for Flink; DuckDB and PyFlink are
## installed from PyPI into target/bench/venv on first use).
bench-compare:
	$(CARGO) build --release --workspace --bins
	test -x target/bench/venv/bin/python || python3 -m venv target/bench/venv
	target/bench/venv/bin/python -c 'import duckdb, pyflink' 2>/dev/null || target/bench/venv/bin/pip install duckdb apache-flink
	target/bench/venv/bin/python scripts/bench_compare.py

## Flame graphs (SVG) of Q1, Q1 without DISTINCT, Q2 global and Q3 into docs/perf, from a
## profiling build under `perf record --call-graph dwarf` (needs perf and `cargo install inferno`).
flamegraphs:
	EDDY_KEEP_SYMBOLS=1 $(CARGO) build --workspace --bins --profile profiling
	scripts/flamegraphs.sh target/profiling/eddy docs/perf

## Parse and plan the shipped pipelines without running them.
check: build
	target/debug/eddy run --check queries/fraud
	target/debug/eddy run --check queries/revenue
	target/debug/eddy run --check queries/banking
	EDDY_POSTGRES_URL=$${EDDY_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres} target/debug/eddy run --check queries/notify
