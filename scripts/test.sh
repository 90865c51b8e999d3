#!/usr/bin/env bash
# Runs every test the way CI does: a private MariaDB for the whole run
# (unless XACT_TEST_MYSQL_DSN points at one), then go test -race on the main
# module and on the end-to-end module in it/.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}

if [[ -z "${XACT_TEST_MYSQL_DSN:-}" ]]; then
	if ! command -v mariadbd >/dev/null 2>&1 && [[ ! -x /usr/sbin/mariadbd ]]; then
		if [[ $(id -u) -eq 0 ]]; then
			echo "== installing mariadb-server (Debian package)"
			export DEBIAN_FRONTEND=noninteractive
			apt-get update -qq
			apt-get install -y -qq mariadb-server >/dev/null
		else
			echo "mariadbd is not installed; run as root or: sudo apt-get install mariadb-server" >&2
			exit 1
		fi
	fi
	tmp=$(mktemp -d -t xact-mariadb.XXXXXX)
	cleanup() {
		$GO run ./internal/mysqltest/cmd/mariadb stop --dir "$tmp" || true
		rm -rf "$tmp"
	}
	trap cleanup EXIT
	echo "== starting a private MariaDB in $tmp"
	XACT_TEST_MYSQL_DSN=$($GO run ./internal/mysqltest/cmd/mariadb start --dir "$tmp")
	export XACT_TEST_MYSQL_DSN
fi

echo "== go vet (and with -tags failpoints)"
$GO vet ./...
$GO vet -tags failpoints ./...
echo "== go test -race ./..."
$GO test -race -count=1 -timeout 20m ./...
# Failpoints exist only in builds with the failpoints tag (internal/failpoint):
# the packages whose tests differ with the tag run again with it.
fp_pkgs=$(comm -13 \
	<($GO list -f '{{.ImportPath}} {{.TestGoFiles}} {{.XTestGoFiles}}' ./... | sort) \
	<($GO list -tags failpoints -f '{{.ImportPath}} {{.TestGoFiles}} {{.XTestGoFiles}}' ./... | sort) |
	cut -d' ' -f1)
if [[ -n "$fp_pkgs" ]]; then
	echo "== go test -race -tags failpoints" $fp_pkgs
	$GO test -race -tags failpoints -count=1 -timeout 20m $fp_pkgs
fi
if [[ -f it/go.mod ]]; then
	echo "== end-to-end tests (it/, -tags failpoints)"
	(cd it && $GO vet -tags failpoints ./... && $GO test -race -tags failpoints -count=1 -timeout 20m ./...)
fi
if [[ -f samples/go.mod ]]; then
	echo "== samples (samples/)"
	(cd samples && $GO vet ./... && $GO test -race -count=1 -timeout 10m ./...)
fi
echo "== all tests passed"
