// Package failpoint lets the fault tests crash or pause a process at a
// named point, and turn on test-only switches that break an invariant on
// purpose.
//
// # Only in builds with the failpoints tag
//
// A library linked into a user's service must never die because of an
// environment variable. Failpoints therefore exist only in binaries built
// with the build tag failpoints (as etcd's gofail and pebble's invariants
// tag):
//
//	go build -tags failpoints ./cmd/xact
//	go test -tags failpoints ./internal/failpoint
//	cd it && go test -tags failpoints -race ./...
//
// In every other build, Hit and On are empty functions the compiler inlines
// away: no environment variable is read, no point name is linked in, and
// nothing of this package is left in the binary (TestDefaultBuildHasNone
// checks `go tool nm` of cmd/xact).
//
// # Arming
//
// With the tag, points and switches are armed through the environment of
// the process under test:
//
//	XACT_FAILPOINTS="tc/decide/after-decision=crash;tc/phase2/after-send=crash@3"
//
// Actions of a point (see Points; the code calls Hit):
//
//	crash     kill the process with SIGKILL the first time the point is hit
//	crash@N   ... on the N-th hit
//	pause     block the first hit until the process gets SIGUSR1 (the hit
//	          prints "failpoint NAME: paused" to stderr once it waits)
//	pause@N   ... the N-th hit
//
// Actions of a switch (the code asks On):
//
//	on        On reports true every time
//	on@N      On reports true the N-th time only
//
// A process that arms nothing pays one atomic load per Hit and On. An
// unknown name, or an action that does not fit the name's kind, is refused
// at start-up (the process exits with status 2), so a typo cannot silently
// disarm a test, and a switch cannot be armed as a point or the other way
// round.
//
// Points lists the library's points. A test binary places its own points
// and switches (the it/ suite's worker has one point and all the switches)
// with Register from an init function, and arms them with Arm once they
// are registered: the environment is read before its init runs.
package failpoint
