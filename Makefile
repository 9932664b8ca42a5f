# The two commands of the README, and their helpers.
#   make run    set up and start the server on the embedded defaults
#   make test   set up and run the whole test suite

CARGO ?= cargo

.PHONY: run test models build deps fmt lint bench bench-train soak fuzz image clean help

run: ## Install what is missing, fetch the models, build, and start the server (SQLite in ./data)
	@scripts/deps.sh run
	@scripts/models.sh
	$(CARGO) run --release --locked -p mongars -- serve

test: ## Install what is missing, then fmt, clippy and every test (SQLite, PostgreSQL, Redis, Chromium)
	@scripts/test.sh

models: ## Fetch the pinned default models into ./models (checked by sha256)
	@scripts/models.sh

build: ## Release binary in target/release/mongars
	@scripts/deps.sh run
	$(CARGO) build --release --locked -p mongars

fmt: ## Format the code
	$(CARGO) fmt --all

lint: ## Lints as CI runs them
	$(CARGO) clippy --workspace --all-targets --all-features --locked -- -D warnings

bench: ## Start-up, login throughput, generation, router, peers, memory, overload, chat and realtime figures (built with the bench feature)
	@scripts/deps.sh run
	@scripts/models.sh
	$(CARGO) build --release --locked -p mongars --features bench
	MONGARS_LOGGING__LEVEL=warn ./target/release/mongars bench auth
	MONGARS_LOGGING__LEVEL=warn ./target/release/mongars bench generate
	MONGARS_LOGGING__LEVEL=error ./target/release/mongars bench router
	MONGARS_LOGGING__LEVEL=error ./target/release/mongars bench peers
	MONGARS_LOGGING__LEVEL=error ./target/release/mongars bench memory
	MONGARS_LOGGING__LEVEL=error ./target/release/mongars bench overload
	@url=$$(scripts/test-postgres.sh start 2>/dev/null) || url=; \
	  MONGARS_LOGGING__LEVEL=error ./target/release/mongars bench chat $${url:+--postgres $$url}; \
	  status=$$?; [ -z "$$url" ] || scripts/test-postgres.sh stop; exit $$status
	@url=$$(scripts/test-redis.sh start 2>/dev/null) || url=; \
	  MONGARS_LOGGING__LEVEL=error ./target/release/mongars bench realtime $${url:+--redis $$url}; \
	  status=$$?; [ -z "$$url" ] || scripts/test-redis.sh stop; exit $$status

bench-train: ## A LoRA run on the embedded model within 15 minutes: speed, memory, perplexities, replies with and without the adapter
	@scripts/deps.sh run
	@scripts/models.sh
	$(CARGO) build --release --locked -p mongars --features bench
	MONGARS_LOGGING__LEVEL=error ./target/release/mongars bench train

SOAK_MINUTES ?= 30
soak: ## Mixed traffic against a server for SOAK_MINUTES minutes: per-minute latency, RSS, descriptors, database size, and their trend
	@scripts/deps.sh run
	@scripts/models.sh
	$(CARGO) build --release --locked -p mongars --features bench
	MONGARS_LOGGING__LEVEL=error ./target/release/mongars bench soak --minutes $(SOAK_MINUTES)

FUZZ_SECONDS ?= 60
fuzz: ## Each fuzz target under libFuzzer for FUZZ_SECONDS seconds (cargo fuzz); what breaks one lands in fuzz/artifacts
	@scripts/fuzz.sh $(FUZZ_SECONDS)

image: ## Container image built here without a registry (deploy/build.sh --offline)
	@scripts/deps.sh run
	deploy/build.sh --offline

clean: ## Remove build output (not ./data)
	$(CARGO) clean

help: ## This list
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'
