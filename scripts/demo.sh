#!/usr/bin/env bash
# make demo: the bank sample (samples/bank) end to end, from a fresh checkout.
#
# It starts a coordinator on its embedded store, a private MariaDB with two
# databases, and the sample's three services, each a process of its own on
# a free loopback port; then, for each mode (AT, TCC, saga), it makes one
# transfer that commits and one that is forced to fail and is rolled back,
# shows each transaction as `xact tx show` sees it while it is open and
# after it ended, and checks the balances and the ledger after each one.
# Everything it started is stopped, and its temporary directory removed,
# on exit. Any unexpected result stops it with a non-zero status.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
HOLD=${XACT_DEMO_HOLD:-1500ms} # how long each transfer stays open to be looked at

if [[ -t 1 ]]; then
	say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
	say() { printf '\n== %s\n' "$*"; }
fi
die() {
	echo "demo: FAIL: $*" >&2
	exit 1
}

if ! command -v mariadbd >/dev/null 2>&1 && [[ ! -x /usr/sbin/mariadbd ]]; then
	if [[ $(id -u) -eq 0 ]]; then
		say "installing mariadb-server (Debian package)"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq mariadb-server >/dev/null
	else
		die "mariadbd is not installed; run as root or: sudo apt-get install mariadb-server"
	fi
fi

tmp=$(mktemp -d -t xact-demo.XXXXXX)
bin=$tmp/bin
pids=()
cleanup() {
	local status=$?
	set +e
	# Stop the services first, then the coordinator (started first).
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		kill "${pids[i]}" 2>/dev/null
		wait "${pids[i]}" 2>/dev/null
	done
	if [[ -x $bin/mariadb-harness ]]; then
		"$bin/mariadb-harness" stop --dir "$tmp/mariadb"
	fi
	if [[ $status -ne 0 ]]; then
		for log in "$tmp"/*.log; do
			[[ -f $log ]] || continue
			echo "--- last lines of $(basename "$log")" >&2
			tail -n 20 "$log" >&2
		done
		echo "demo: failed (exit status $status)" >&2
	fi
	rm -rf "$tmp"
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "building xact and the bank sample"
mkdir -p "$bin"
$GO build -o "$bin/xact" ./cmd/xact
$GO build -o "$bin/mariadb-harness" ./internal/mysqltest/cmd/mariadb
(cd samples && $GO build -o "$bin/" ./bank/cmd/...) # api, account, ledger, bank
xact() { "$bin/xact" "$@"; }
bank() { "$bin/bank" "$@"; }

say "starting a private MariaDB"
"$bin/mariadb-harness" start --dir "$tmp/mariadb" --port-file "$tmp/mariadb.port" >/dev/null
dbport=$(<"$tmp/mariadb.port")
sql() { mariadb --protocol=tcp -h 127.0.0.1 -P "$dbport" -u root --batch --skip-column-names "$@"; }
echo "MariaDB on 127.0.0.1:$dbport"

say "creating the databases: the business tables, undo_log (xact sql undo-log), tcc_fence_log (xact sql tcc-fence)"
for svc in account ledger; do
	sql -e "CREATE DATABASE bank_$svc"
	# `xact sql` prints one CREATE TABLE, which the ";" ends for the
	# mariadb client (an empty statement is harmless).
	{
		cat "samples/bank/schema/$svc.sql"
		xact sql undo-log
		echo ';'
		xact sql tcc-fence
		echo ';'
	} | sql "bank_$svc"
	echo "bank_$svc: $(sql "bank_$svc" -e 'SHOW TABLES' | tr '\n' ' ')"
done

# start NAME ARGS... runs a process in the background with its output in
# $tmp/NAME.log and sets addr to the address it prints ("listening on ADDR").
start() {
	local name=$1
	shift
	"$@" >"$tmp/$name.log" 2>&1 &
	local pid=$!
	pids+=("$pid")
	for _ in $(seq 300); do
		addr=$(sed -n 's/^listening on //p' "$tmp/$name.log" | head -n 1)
		[[ -n $addr ]] && return 0
		kill -0 "$pid" 2>/dev/null || die "$name exited: $(tail -n 5 "$tmp/$name.log")"
		sleep 0.1
	done
	die "$name did not start within 30s"
}

say "starting the coordinator (embedded store in a temporary directory)"
start tc "$bin/xact" server --listen 127.0.0.1:0 --data-dir "$tmp/tc-data"
export XACT_SERVER=$addr # the address every `xact tx ...` below talks to
echo "xact server on $XACT_SERVER"

say "starting the bank: account, ledger, api"
dsn="root@tcp(127.0.0.1:$dbport)"
start account "$bin/account" --log-level debug --tc "$XACT_SERVER" --listen 127.0.0.1:0 --dsn "$dsn/bank_account"
account=$addr
start ledger "$bin/ledger" --log-level debug --tc "$XACT_SERVER" --listen 127.0.0.1:0 --dsn "$dsn/bank_ledger"
ledger=$addr
start api "$bin/api" --log-level debug --tc "$XACT_SERVER" --listen 127.0.0.1:0 --account "$account" --ledger "$ledger"
api=$addr
bank_api() { bank "$1" --api "$api" "${@:2}"; }
for i in $(seq 300); do
	bank_api report >/dev/null 2>&1 && break
	((i < 300)) || die "the bank did not become ready within 30s"
	sleep 0.1
done
echo "account on $account, ledger on $ledger, api on $api"

say "before"
bank_api report

# Expected state, updated by every committed transfer.
alice=100
bob=100

# check_balances fails the demo unless the database holds the expected
# balances.
check_balances() {
	local got want="alice=$alice bob=$bob"
	got=$(sql bank_account -e "SELECT CONCAT(id, '=', balance) FROM account ORDER BY id" | paste -sd ' ')
	[[ $got == "$want" ]] || die "balances: $got, want $want"
	echo "balances OK: $got"
}

# check_entries XID WANT fails the demo unless the ledger's entries of XID
# are in the states WANT (space-separated; empty for none).
check_entries() {
	local got
	got=$(sql bank_ledger -e "SELECT state FROM entry WHERE xid = '$1' ORDER BY id" | paste -sd ' ')
	[[ $got == "$2" ]] || die "ledger entries of $1: '$got', want '$2'"
	echo "ledger OK: entries of $1: ${got:-none}"
}

# trail XID prints the services' log lines about XID, in time order.
trail() {
	grep -hF "xid=$1" "$tmp/api.log" "$tmp/account.log" "$tmp/ledger.log" | sort -s -k1,1 |
		sed -E 's/^time=[^ ]*T([0-9:.]+)[^ ]* level=[A-Z]+ msg=("([^"]*)"|([^ ]*)) service=([a-z]+)(.*)/   \1 \5: \3\4\6/; s/ xid=[^ ]+//'
}

# transfer MODE AMOUNT OUTCOME [bank flags] makes one transfer, held open
# for $HOLD, shows it with `xact tx show` while it is open and after it
# ended, and sets xid.
transfer() {
	local mode=$1 amount=$2 want=$3
	shift 3
	bank_api transfer --mode "$mode" --from alice --to bob --amount "$amount" --hold "$HOLD" --want "$want" "$@" >"$tmp/transfer.out" &
	local tpid=$! open=""
	# While the API holds the transaction open, the TC lists it in Begin.
	for _ in $(seq 100); do
		open=$(xact tx list --status BEGIN | awk -v name="transfer-$mode" 'NR > 1 && $2 == name { print $1; exit }')
		[[ -n $open ]] && break
		kill -0 "$tpid" 2>/dev/null || break
		sleep 0.05
	done
	if [[ -n $open ]]; then
		# Both participants register their branch while the API waits
		# for them; once both are listed, the API is holding it open.
		local show=""
		for _ in $(seq 100); do
			show=$(xact tx show "$open")
			(($(grep -cE '^ +[0-9]+ +[^ ]+ +(AT|TCC|SAGA) ' <<<"$show") >= 2)) && break
			sleep 0.05
		done
		echo "-- while it is open: xact tx show $open"
		sed 's/^/   /' <<<"$show"
	fi
	wait "$tpid" || die "transfer: $(cat "$tmp/transfer.out")"
	local outcome reason
	read -r xid outcome reason <"$tmp/transfer.out"
	echo "-- bank transfer: $xid $outcome${reason:+ ($reason)}"
	[[ -n $open ]] || die "the transaction was not seen open"
	[[ $open == "$xid" ]] || die "saw $open open, the transfer was $xid"
	# Commit and Rollback return once the decision is durable; phase two
	# (deleting or replaying undo logs, Confirm/Cancel, compensations) may
	# finish a moment later. The TC keeps a finished transaction's final
	# status (its tombstone) for a while.
	local status=""
	for _ in $(seq 300); do
		status=$(xact tx show "$xid" | awk '$1 == "Status:" { print $2 }')
		[[ $status == COMMITTED || $status == ROLLBACKED ]] && break
		sleep 0.1
	done
	echo "-- what the services logged about it (phase two is pushed to them by the TC):"
	trail "$xid"
	echo "-- after it ended: xact tx show $xid"
	xact tx show "$xid" | sed 's/^/   /'
	case $want in
	committed) [[ $status == COMMITTED ]] || die "$xid is $status at the TC, want COMMITTED" ;;
	rolled-back) [[ $status == ROLLBACKED ]] || die "$xid is $status at the TC, want ROLLBACKED" ;;
	esac
}

say "AT: transfer 30 from alice to bob (commits)"
transfer at 30 committed
alice=$((alice - 30)) bob=$((bob + 30))
check_balances
check_entries "$xid" posted

say "AT: transfer 30, forced to fail after both services wrote: the undo logs put everything back"
transfer at 30 rolled-back --fail
check_balances
check_entries "$xid" ""

say "TCC: transfer 20 (account AT, ledger TCC: Try = pending entry, Confirm = posted)"
transfer tcc 20 committed
alice=$((alice - 20)) bob=$((bob + 20))
check_balances
check_entries "$xid" posted

say "TCC: transfer 20, forced to fail: the account's undo log and the ledger's Cancel (voided)"
transfer tcc 20 rolled-back --fail
check_balances
check_entries "$xid" voided

say "saga: transfer 10 (steps: move money, post entry)"
transfer saga 10 committed
alice=$((alice - 10)) bob=$((bob + 10))
check_balances
check_entries "$xid" posted

say "saga: transfer 10, forced to fail: compensations in reverse order (entry voided, money moved back)"
transfer saga 10 rolled-back --fail
check_balances
check_entries "$xid" voided

say "after"
bank_api report
locks=$(xact lock list | tail -n +2)
[[ -z $locks ]] || die "global locks left at the TC: $locks"
# A committed AT branch's undo log is deleted in phase two, batched and
# asynchronously; a rolled-back one's when it is replayed.
for _ in $(seq 100); do
	undo=$(sql -e "SELECT (SELECT COUNT(*) FROM bank_account.undo_log WHERE log_status = 0) + (SELECT COUNT(*) FROM bank_ledger.undo_log WHERE log_status = 0)")
	((undo == 0)) && break
	sleep 0.1
done
((undo == 0)) || die "$undo undo logs left after every transaction ended"
echo
echo "no global locks and no undo logs left; every balance as expected"
say "demo passed"
