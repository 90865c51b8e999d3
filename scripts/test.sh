#!/usr/bin/env bash
# Runs every test the way CI does: a private MariaDB and a private
# PostgreSQL for the whole run (unless XACT_TEST_MYSQL_DSN and
# XACT_TEST_POSTGRES_DSN point at servers to use), then vet and go test
# -race on the main module, on the end-to-end module in it/ and on samples/.
# A PostgreSQL or MariaDB the machine already runs is not used.
#
# Every step runs even when an earlier one failed, so that a failing unit
# test does not hide whether it/ and samples/ pass. The end is a summary of
# every step, with the failed tests and packages of the ones that failed;
# the exit status is 1 if any step failed.
set -uo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}

tmp="" pgtmp="" logs=""
cleanup() {
	if [[ -n $tmp ]]; then
		$GO run ./internal/mysqltest/cmd/mariadb stop --dir "$tmp" || true
		rm -rf "$tmp"
	fi
	if [[ -n $pgtmp ]]; then
		$GO run ./internal/pgtest/cmd/postgres stop --dir "$pgtmp" || true
		rm -rf "$pgtmp"
	fi
	[[ -z $logs ]] || rm -rf "$logs"
}
trap cleanup EXIT

if [[ -z "${XACT_TEST_MYSQL_DSN:-}" ]]; then
	if ! command -v mariadbd >/dev/null 2>&1 && [[ ! -x /usr/sbin/mariadbd ]]; then
		if [[ $(id -u) -eq 0 ]]; then
			echo "== installing mariadb-server (Debian package)"
			export DEBIAN_FRONTEND=noninteractive
			apt-get update -qq && apt-get install -y -qq mariadb-server >/dev/null ||
				{ echo "installing mariadb-server failed" >&2; exit 1; }
		else
			echo "mariadbd is not installed; run as root or: sudo apt-get install mariadb-server" >&2
			exit 1
		fi
	fi
	tmp=$(mktemp -d -t xact-mariadb.XXXXXX) || exit 1
	echo "== starting a private MariaDB in $tmp"
	XACT_TEST_MYSQL_DSN=$($GO run ./internal/mysqltest/cmd/mariadb start --dir "$tmp") ||
		{ echo "could not start a private MariaDB" >&2; exit 1; }
	export XACT_TEST_MYSQL_DSN
fi

if [[ -z "${XACT_TEST_POSTGRES_DSN:-}" ]]; then
	# The Debian package's binaries: /usr/lib/postgresql/VERSION/bin.
	if ! compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; then
		if [[ $(id -u) -eq 0 ]]; then
			echo "== installing postgresql (Debian package)"
			export DEBIAN_FRONTEND=noninteractive
			apt-get update -qq && apt-get install -y -qq postgresql >/dev/null ||
				{ echo "installing postgresql failed" >&2; exit 1; }
		else
			echo "PostgreSQL is not installed; run as root or: sudo apt-get install postgresql" >&2
			exit 1
		fi
	fi
	# Directly in the temporary directory: run as root, the server runs as
	# the user postgres, which must reach it.
	pgtmp=$(mktemp -d -t xact-postgres.XXXXXX) || exit 1
	echo "== starting a private PostgreSQL in $pgtmp"
	XACT_TEST_POSTGRES_DSN=$($GO run ./internal/pgtest/cmd/postgres start --dir "$pgtmp") ||
		{ echo "could not start a private PostgreSQL" >&2; exit 1; }
	export XACT_TEST_POSTGRES_DSN
fi

# Headless Chromium for the web console's browser test (tc/console_test.go),
# which fails instead of skipping when XACT_TEST_REQUIRE_BROWSER is set.
if [[ -z "${XACT_TEST_CHROMIUM:-}" ]] &&
	! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1 &&
	! command -v google-chrome >/dev/null 2>&1; then
	if [[ $(id -u) -eq 0 ]]; then
		echo "== installing chromium (Debian package)"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq && apt-get install -y -qq chromium >/dev/null ||
			{ echo "installing chromium failed" >&2; exit 1; }
	else
		echo "Chromium is not installed; run as root or: sudo apt-get install chromium" >&2
		exit 1
	fi
fi
export XACT_TEST_REQUIRE_BROWSER=1

logs=$(mktemp -d -t xact-test-logs.XXXXXX) || exit 1
passed=() failed=() failures=()

# step NAME DIR COMMAND...: runs COMMAND in DIR, its output shown and kept,
# and records whether it passed.
step() {
	local name=$1 dir=$2
	shift 2
	local log="$logs/$(( ${#passed[@]} + ${#failed[@]} )).log" start=$SECONDS rc=0
	echo "== $name"
	(cd "$dir" && "$@") 2>&1 | tee "$log" || rc=$?
	if (( rc == 0 )); then
		passed+=("$name ($((SECONDS - start))s)")
		return
	fi
	failed+=("$name (exit $rc, $((SECONDS - start))s)")
	# What go test and go vet name as failed: tests, packages, build errors.
	local line
	while IFS= read -r line; do
		failures+=("  $name: $line")
	done < <(grep -E '^(--- FAIL|FAIL|panic:|# )' "$log" | grep -v '^FAIL$' | head -n 50)
}

step "go vet" . $GO vet ./...
step "go vet -tags failpoints" . $GO vet -tags failpoints ./...
step "go test -race ./..." . $GO test -race -count=1 -timeout 20m ./...
# Failpoints exist only in builds with the failpoints tag (internal/failpoint):
# the packages whose tests differ with the tag run again with it.
fp_pkgs=$(comm -13 \
	<($GO list -f '{{.ImportPath}} {{.TestGoFiles}} {{.XTestGoFiles}}' ./... | sort) \
	<($GO list -tags failpoints -f '{{.ImportPath}} {{.TestGoFiles}} {{.XTestGoFiles}}' ./... | sort) |
	cut -d' ' -f1)
if [[ -n "$fp_pkgs" ]]; then
	# shellcheck disable=SC2086 # one argument per package
	step "go test -race -tags failpoints" . $GO test -race -tags failpoints -count=1 -timeout 20m $fp_pkgs
fi
if [[ -f it/go.mod ]]; then
	step "it/: go vet -tags failpoints" it $GO vet -tags failpoints ./...
	step "it/: go test -race -tags failpoints (end-to-end)" it $GO test -race -tags failpoints -count=1 -timeout 20m ./...
fi
if [[ -f samples/go.mod ]]; then
	step "samples/: go vet" samples $GO vet ./...
	step "samples/: go test -race" samples $GO test -race -count=1 -timeout 10m ./...
fi

echo
echo "== summary"
for s in "${passed[@]}"; do echo "ok    $s"; done
for s in "${failed[@]}"; do echo "FAIL  $s"; done
if (( ${#failed[@]} > 0 )); then
	if (( ${#failures[@]} > 0 )); then
		echo
		echo "== failures"
		printf '%s\n' "${failures[@]}"
	fi
	echo "== ${#failed[@]} of $(( ${#passed[@]} + ${#failed[@]} )) steps failed"
	exit 1
fi
echo "== all tests passed"
