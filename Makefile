# xact — see README.md. Every target runs on a fresh Debian machine with Go.
GO       ?= go
GOFLAGS  ?=
BIN      := bin/xact
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.5.1

.PHONY: run build test bench proto lint demo soak clean

## run: the coordinator on its embedded store (127.0.0.1:8091, data in ./xact-data).
## It builds bin/xact and execs it in the recipe's shell, so that the signal
## make passes on when it is killed (SIGTERM, Ctrl-C) reaches the server:
## `go run` does not pass SIGTERM on, and left the server running.
run: build
	exec $(BIN) server

build:
	$(GO) build -o $(BIN) ./cmd/xact

## test: every test, with -race, against a private MariaDB and a private
## PostgreSQL this target starts, and the web console's browser test in a
## headless Chromium (installing the Debian packages mariadb-server,
## postgresql and chromium first if they are missing and we are root;
## PostgreSQL then runs as the user postgres)
test:
	./scripts/test.sh

## bench: go test benchmarks of the store and the coordinator
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./storage/... ./tc/...

## proto: regenerate protocol/xactpb from protocol/xact.proto
proto:
	@command -v protoc >/dev/null || { echo "protoc missing: apt-get install -y protobuf-compiler"; exit 1; }
	GOBIN=$(CURDIR)/bin $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	GOBIN=$(CURDIR)/bin $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	PATH=$(CURDIR)/bin:$$PATH protoc -I protocol \
		--go_out=protocol/xactpb --go_opt=paths=source_relative \
		--go-grpc_out=protocol/xactpb --go-grpc_opt=paths=source_relative \
		protocol/xact.proto

## demo: the bank sample end to end (samples/bank): a coordinator, a private
## MariaDB and three services; AT, TCC and saga transfers that commit and
## that roll back, checked
demo:
	GO=$(GO) ./scripts/demo.sh

## soak: the end-to-end fault suite for DURATION (default 10m): the bank
## invariant under TC and RM kills and 10-30 s partitions, the partition
## cases at full length, duplicated and delayed phase two, the bank on a
## three-coordinator cluster (node kills every 7-15 s, a store partition,
## a mariadbd kill); prints a
## summary table. Uses XACT_TEST_MYSQL_DSN, or starts a private MariaDB.
## Then the store's corruption matrix at every position (a few minutes)
## and FuzzCorruptDataDir for CORRUPTION_FUZZTIME (default 2m).
DURATION ?= 10m
CORRUPTION_FUZZTIME ?= 2m
soak:
	cd it && XACT_SOAK=$(DURATION) $(GO) test -race -tags failpoints -count=1 -timeout 0 \
		-run '^(TestBankInvariant|TestPartition|TestPhaseTwoDuplicatesDelays|TestClusterBank)$$'
	XACT_CORRUPTION_MATRIX=long $(GO) test -count=1 -timeout 0 -run '^TestCorruptionMatrix$$' ./storage/embedded
	$(GO) test -count=1 -timeout 0 -run '^$$' -fuzz '^FuzzCorruptDataDir$$' -fuzztime $(CORRUPTION_FUZZTIME) ./storage/embedded

lint:
	$(GO) vet ./...
	$(GO) vet -tags failpoints ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }

clean:
	rm -rf bin xact-data
