package scripts

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeGo is a stand-in for the go command that test.sh runs: it records
// each call ("dir|args") in $FAKE_GO_LOG, prints nothing for go list, and
// fails go test in the directory $FAKE_GO_FAIL_IN as go test does.
const fakeGo = `#!/usr/bin/env bash
echo "$PWD|$*" >> "$FAKE_GO_LOG"
if [[ $1 == test && $PWD == "$FAKE_GO_FAIL_IN" ]]; then
	echo "--- FAIL: TestFlaky (0.01s)"
	echo "    flaky_test.go:12: boom"
	echo "FAIL"
	echo "FAIL	github.com/xact-io/xact/rm	0.123s"
	echo "ok  	github.com/xact-io/xact/tm	0.456s"
	echo "FAIL"
	exit 1
fi
exit 0
`

// testSh runs scripts/test.sh with the fake go command failing go test in
// failIn ("" for none); it returns the exit code, the output and the calls.
func testSh(t *testing.T, failIn string) (int, string, []string) {
	t.Helper()
	dir := t.TempDir()
	goCmd := filepath.Join(dir, "go")
	if err := os.WriteFile(goCmd, []byte(fakeGo), 0o755); err != nil {
		t.Fatal(err)
	}
	calls := filepath.Join(dir, "calls")
	cmd := exec.Command("bash", filepath.Join(root(t), "scripts", "test.sh"))
	cmd.Env = append(os.Environ(), "GO="+goCmd, "FAKE_GO_LOG="+calls, "FAKE_GO_FAIL_IN="+failIn,
		"XACT_TEST_MYSQL_DSN=fake") // no private MariaDB
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(calls)
	return code, out.String(), strings.Split(strings.TrimSpace(string(b)), "\n")
}

// TestTestShRunsEverySuite: a failing unit test does not stop test.sh: the
// end-to-end tests (it/) and the samples still run, and the summary names
// the failed step, test and package; the exit status is non-zero.
func TestTestShRunsEverySuite(t *testing.T) {
	top := root(t)
	code, out, calls := testSh(t, top)
	if code == 0 {
		t.Errorf("test.sh exit status 0 with a failing test; output:\n%s", out)
	}
	for _, want := range []string{
		top + "|vet ",
		top + "/it|vet ",
		top + "/it|test -race",
		top + "/samples|vet ",
		top + "/samples|test -race",
	} {
		found := false
		for _, c := range calls {
			found = found || strings.HasPrefix(c, want)
		}
		if !found {
			t.Errorf("test.sh did not run %q after the failure; calls:\n%s", want, strings.Join(calls, "\n"))
		}
	}
	i := strings.LastIndex(out, "== summary")
	if i < 0 {
		t.Fatalf("test.sh printed no summary; output:\n%s", out)
	}
	summary := out[i:]
	for _, want := range []string{"FAIL  go test -race ./...", "ok    it/", "ok    samples/", "--- FAIL: TestFlaky", "FAIL\tgithub.com/xact-io/xact/rm", "1 of"} {
		if !strings.Contains(summary, want) {
			t.Errorf("summary does not contain %q:\n%s", want, summary)
		}
	}
	if strings.Contains(summary, "xact/tm") {
		t.Errorf("summary names a package that passed:\n%s", summary)
	}

	code, out, _ = testSh(t, "")
	if code != 0 || !strings.Contains(out, "all tests passed") {
		t.Errorf("test.sh with every step passing = %d; output:\n%s", code, out)
	}
}
