//go:build !failpoints

package failpoint

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
)

// childEnv makes the test binary run TestEnvIgnored's child.
const childEnv = "XACT_FAILPOINT_TEST_CHILD"

// TestEnvIgnored starts a process of a default build with failpoints armed
// to crash, and with a name that does not exist: neither kills it.
func TestEnvIgnored(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		Hit("tc/decide/after-decision")
		if On("it/rm/skip-at-commit") {
			t.Fatal(`On("it/rm/skip-at-commit") = true in a default build`)
		}
		return
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "-test.run=^TestEnvIgnored$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"=1",
		"XACT_FAILPOINTS=tc/decide/after-decision=crash;it/rm/skip-at-commit=on;no/such=explode")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("a default build armed through XACT_FAILPOINTS: %v\n%s", err, out)
	}
}

// TestDefaultBuildHasNone builds cmd/xact as a user would and checks that
// nothing of this package is in it: no symbol of the package (go tool nm),
// not the name of the environment variable, not the name of any point the
// code places. The same checks on a build with the tag must find them all,
// or the checks would prove nothing.
func TestDefaultBuildHasNone(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	names := placedPoints(t, root)
	if len(names) < 10 {
		t.Fatalf("found %d failpoint.Hit calls with a literal name, want the library's (%v)", len(names), names)
	}
	// Build as the test binary was built (-race or not), so that the
	// packages come from the build cache.
	race := false
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			race = race || s.Key == "-race" && s.Value == "true"
		}
	}
	for _, tags := range []string{"", "failpoints"} {
		t.Run("tags="+tags, func(t *testing.T) {
			t.Parallel()
			bin := filepath.Join(t.TempDir(), "xact")
			args := []string{"build", "-tags=" + tags, "-o", bin}
			if race {
				args = append(args, "-race")
			}
			build := exec.Command("go", append(args, "./cmd/xact")...)
			build.Dir = root
			if out, err := build.CombinedOutput(); err != nil {
				t.Fatalf("go %s: %v\n%s", strings.Join(build.Args[1:], " "), err, out)
			}
			nm, err := exec.Command("go", "tool", "nm", bin).Output()
			if err != nil {
				t.Fatalf("go tool nm: %v", err)
			}
			var syms []string
			for _, line := range strings.Split(string(nm), "\n") {
				if strings.Contains(line, "xact/internal/failpoint.") {
					syms = append(syms, strings.TrimSpace(line))
				}
			}
			data, err := os.ReadFile(bin)
			if err != nil {
				t.Fatal(err)
			}
			var strs []string
			for _, s := range append([]string{"XACT_FAILPOINTS"}, names...) {
				if bytes.Contains(data, []byte(s)) {
					strs = append(strs, s)
				}
			}
			if tags == "" {
				if len(syms) > 0 {
					t.Errorf("a default build of cmd/xact has %d failpoint symbols, want none:\n%s", len(syms), strings.Join(syms, "\n"))
				}
				if len(strs) > 0 {
					t.Errorf("a default build of cmd/xact contains %q, want none of them", strs)
				}
				return
			}
			if len(syms) == 0 || len(strs) != len(names)+1 {
				t.Errorf("a build with -tags failpoints has %d failpoint symbols and %d of the %d strings, want some and all: the check cannot see failpoints",
					len(syms), len(strs), len(names)+1)
			}
		})
	}
}

// placedPoints returns the literal names the module's code passes to
// failpoint.Hit.
func placedPoints(t *testing.T, root string) []string {
	t.Helper()
	re := regexp.MustCompile(`failpoint\.Hit\("([^"]+)"\)`)
	seen := map[string]bool{}
	var names []string
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || fileExists(filepath.Join(path, "go.mod"))) {
				return filepath.SkipDir // other modules (it/, samples/)
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range re.FindAllSubmatch(src, -1) {
			if n := string(m[1]); !seen[n] {
				seen[n] = true
				names = append(names, n)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
