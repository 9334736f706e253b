# Gantry: event-driven CI/CD on NATS JetStream. Needs Go and git, nothing else.
GO      ?= go
BIN     := bin/gantry
PKG     := github.com/gantry-ci/gantry/...
MODULES := events schemas services loadtest
FUZZTIME ?= 5s

.PHONY: build run test test-short fuzz bench lint tidy clean

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
	$(GO) test -run='^$$' -fuzz='^FuzzDecode$$' -fuzztime=$(FUZZTIME) ./events
	$(GO) test -run='^$$' -fuzz='^FuzzValidJSON$$' -fuzztime=$(FUZZTIME) ./events
	$(GO) test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=$(FUZZTIME) ./services/pipelinefile
	$(GO) test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=$(FUZZTIME) ./services/buildspec
	$(GO) test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=$(FUZZTIME) ./services/junit
	$(GO) test -run='^$$' -fuzz='^FuzzUnpack$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=2s ./services/artifact
	$(GO) test -run='^$$' -fuzz='^FuzzDecideDrivesRunsToAnEnd$$' -fuzztime=$(FUZZTIME) ./services/decider
	$(GO) test -run='^$$' -fuzz='^FuzzNext$$' -fuzztime=$(FUZZTIME) ./services/deployplan
	$(GO) test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=$(FUZZTIME) ./services/appspec
	$(GO) test -run='^$$' -fuzz='^FuzzDecide$$' -fuzztime=$(FUZZTIME) ./services/deploydecider

# Load benchmarks: JSON reports with same-run NATS baselines (see loadtest/README.md).
bench: build
	$(GO) run ./loadtest/cmd/loadtest noop
	$(GO) run ./loadtest/cmd/loadtest deploy

lint:
	@test -z "$$(gofmt -l events schemas services loadtest examples)" || (gofmt -l events schemas services loadtest examples; exit 1)
	$(GO) vet $(PKG)

tidy:
	for m in $(MODULES); do (cd $$m && $(GO) mod tidy) || exit 1; done

clean:
	rm -rf bin .gantry
