# Gantry: event-driven CI/CD on NATS JetStream. Needs Go and git, nothing else.
GO      ?= go
BIN     := bin/gantry
PKG     := github.com/gantry-ci/gantry/...
MODULES := events schemas services loadtest examples/chatops-bot clustertest
# Fuzz budgets are execution counts, not durations: with a duration, Go
# 1.26's coordinator can fail a healthy target with "context deadline
# exceeded" when its deadline lands mid-call (golang/go#75804, fixed in Go
# 1.27), and minimizing a new input (60 s by default) outlived a 5 s budget.
# FuzzUnpack (it writes each archive to disk) gets fewer; make fuzz
# FUZZTIME=60s FUZZTIME_SLOW=60s fuzzes each target for a minute.
FUZZTIME ?= 30000x
FUZZTIME_SLOW ?= 5000x
FUZZMINIMIZETIME ?= 100x
FUZZ = $(GO) test -run='^$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINIMIZETIME)

.PHONY: build run test test-short fuzz bench lint tidy clean cluster-test images compose-config compose-up compose-demo compose-down

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./services/cmd/gantry

# The main job: every service on an embedded NATS server, the example pipeline running.
run: build
	./$(BIN) dev

# The whole suite, with the race detector, plus a short pass of every fuzz target.
test: build
	$(GO) test -race -count=1 -timeout 20m $(PKG)
	$(MAKE) fuzz

test-short:
	$(GO) test -short -count=1 $(PKG)

fuzz:
	$(FUZZ) -fuzz='^FuzzDecode$$' ./events
	$(FUZZ) -fuzz='^FuzzValidJSON$$' ./events
	$(FUZZ) -fuzz='^FuzzParse$$' ./services/pipelinefile
	$(FUZZ) -fuzz='^FuzzParse$$' ./services/buildspec
	$(FUZZ) -fuzz='^FuzzParse$$' ./services/junit
	$(FUZZ) -fuzz='^FuzzUnpack$$' -fuzztime=$(FUZZTIME_SLOW) ./services/artifact
	$(FUZZ) -fuzz='^FuzzDecideDrivesRunsToAnEnd$$' ./services/decider
	$(FUZZ) -fuzz='^FuzzGatesDriveRunsToAnEnd$$' ./services/decider
	$(FUZZ) -fuzz='^FuzzRandomPipelinesEnd$$' ./services/decider
	$(FUZZ) -fuzz='^FuzzLane$$' -fuzztime=$(FUZZTIME_SLOW) ./services/lanes
	$(FUZZ) -fuzz='^FuzzNext$$' ./services/deployplan
	$(FUZZ) -fuzz='^FuzzParse$$' ./services/appspec
	$(FUZZ) -fuzz='^FuzzDecide$$' ./services/deploydecider
	$(FUZZ) -fuzz='^FuzzDecide$$' ./services/rollbackpolicy
	$(FUZZ) -fuzz='^FuzzWriter$$' ./services/redact
	$(FUZZ) -fuzz='^FuzzMaskedLines$$' ./services/runner
	$(FUZZ) -fuzz='^FuzzPlan$$' ./services/retention
	$(FUZZ) -fuzz='^FuzzDecide$$' ./services/triggerfilter
	$(FUZZ) -fuzz='^FuzzParseDelivery$$' ./services/source
	$(FUZZ) -fuzz='^FuzzSlashCommand$$' ./services/chatops

# Load benchmarks: JSON reports with same-run NATS baselines (see
# loadtest/README.md). Both always run; bench fails when either failed or
# missed a target of its report (loadtest exits 3 for a missed target).
bench: build
	@rc=0; \
	$(GO) run ./loadtest/cmd/loadtest noop || rc=$$?; \
	$(GO) run ./loadtest/cmd/loadtest deploy || rc=$$?; \
	if [ $$rc -ne 0 ]; then echo "make bench: a benchmark failed or missed a target (exit $$rc)" >&2; fi; \
	exit $$rc

lint:
	@test -z "$$(gofmt -l events schemas services loadtest clustertest examples)" || (gofmt -l events schemas services loadtest clustertest examples; exit 1)
	$(GO) vet $(PKG)

tidy:
	for m in $(MODULES); do (cd $$m && $(GO) mod tidy) || exit 1; done

clean:
	rm -rf bin .gantry .build

# Only the fault tests on a 3-node cluster of gantry-nats containers (and
# the SIGTERM drain of a real worker process); make test runs them too.
cluster-test:
	$(GO) test -count=1 -v -timeout 15m ./clustertest/...

# The project's own images (gantry:dev, gantry-nats:dev, gantry-runner:dev),
# FROM scratch from binaries built here: no image is ever pulled.
images:
	GO=$(GO) sh deploy/docker/build-images.sh

# docker-compose.yml on a 3-node NATS cluster: `docker compose` where the
# plugin exists, else the python docker-compose.
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)

# Certificates, passwords and server configurations under .compose/ (never committed).
compose-config: build
	sh deploy/docker/compose-config.sh

compose-up: images compose-config
	$(COMPOSE) up -d --remove-orphans
	sh deploy/docker/compose-wait.sh

# The example pipeline and deployment group through the cluster, as the
# operator user from the host; exits non-zero unless the run succeeded.
compose-demo: build
	sh deploy/docker/compose-demo.sh

compose-down:
	$(COMPOSE) down -v --remove-orphans
