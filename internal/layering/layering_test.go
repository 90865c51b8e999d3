package layering

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/xact-io/xact"

// A rule says that the packages matching from must not depend on the
// packages matching not, directly or through other packages of this module
// (only the imports of non-test files count: a test may import what it
// likes). Patterns are relative to the module: "x" is the package x,
// "x/..." is x and every package below it, "..." is every package, "*test"
// is a test helper package (a path element ending in "test", such as
// tc/tctest, and what is below it); a pattern starting with "!" removes
// what it matches from the list.
type rule struct {
	from, not []string
	why       string
}

var rules = []rule{
	{[]string{"protocol/..."}, []string{"...", "!protocol/..."},
		"the protocol is the vocabulary both sides share; it depends on nothing else of ours"},
	{[]string{"internal/failpoint"}, []string{"..."},
		"failpoint is linked into every component that places a point; it depends on nothing of ours"},
	{[]string{"internal/..."}, []string{"tc/...", "storage/...", "tm/...", "rm/...", "datasource/...", "undo/...", "cmd/..."},
		"internal packages are small leaves the components share, below all of them"},
	{[]string{"storage/..."}, []string{"tc/...", "tm/...", "rm/...", "datasource/...", "undo/..."},
		"the store is below the coordinator and knows no client"},
	{[]string{"tc/..."}, []string{"tm/...", "rm/...", "datasource/...", "undo/..."},
		"the coordinator does not link the client libraries"},
	{[]string{"tm/...", "rm/...", "datasource/...", "undo/..."}, []string{"tc/...", "storage/..."},
		"a service links the client libraries, never the coordinator or its store"},
	{[]string{"tm/..."}, []string{"rm/...", "datasource/...", "undo/..."},
		"the TM begins and ends global transactions; it knows no resource manager"},
	{[]string{"rm/...", "!rm/saga", "datasource/..."}, []string{"tm/..."},
		"a resource manager runs branches of a global someone else began; it reads the XID through internal/global, not the TM (rm/saga, which begins its sagas, may use the TM)"},
	{[]string{"rm"}, []string{"rm/...", "!rm", "datasource/..."},
		"the RM core dispatches to the modes; the modes depend on it, not the other way"},
	{[]string{"rm/tcc"}, []string{"rm/saga", "datasource/...", "!datasource/mysqldialect/errno"},
		"the modes do not depend on each other; what they share lives below them (the MySQL error numbers are a leaf any may use)"},
	{[]string{"rm/saga"}, []string{"rm/tcc", "datasource/...", "!datasource/mysqldialect/errno"},
		"the modes do not depend on each other; what they share lives below them (the MySQL error numbers are a leaf any may use)"},
	{[]string{"rm/fence"}, []string{"rm/tcc", "rm/saga", "datasource/...", "!datasource/mysqldialect/errno"},
		"the fence (and the branch in a context) is what TCC resources and saga steps share: it lives below both"},
	{[]string{"datasource/mysqldialect/errno"}, []string{"..."},
		"the MySQL error numbers are a leaf: the TCC fence uses them without linking the dialect and its parser"},
	{[]string{"datasource/..."}, []string{"rm/tcc", "rm/saga"},
		"the modes do not depend on each other; what they share lives below them"},
	{[]string{"undo/..."}, []string{"datasource/...", "rm/...", "tm/..."},
		"undo records are a format the data source uses, not the other way"},
	{[]string{"datasource/mysqldialect"}, []string{"datasource"},
		"the dialect is below the database/sql wrapper"},
	{[]string{"...", "!cmd/..."}, []string{"cmd/..."},
		"commands are the top of the picture; nothing imports them"},
	{[]string{"...", "!*test"}, []string{"*test"},
		"test helpers are for tests; the library never links them"},
}

// knownExceptions are edges that break a rule today and are to be
// removed. Each is (from, to) as the failure names it; the test fails too
// when one of them no longer occurs, so that it is taken off this list.
var knownExceptions = map[[2]string]string{}

// pkg is what go list says of one package of the module.
type pkg struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	Imports    []string
	Error      *struct{ Err string }
}

// list runs go list on the module with the given build tags and returns
// its packages by path relative to the module.
func list(t *testing.T, tags string) map[string]*pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-e", "-tags="+tags, "-json=ImportPath,Dir,GoFiles,Imports,Error", "./...")
	cmd.Dir = "../.."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	pkgs := map[string]*pkg{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if p.Error != nil {
			t.Errorf("go list %s: %s", p.ImportPath, p.Error.Err)
		}
		rel, ok := relative(p.ImportPath)
		if !ok {
			t.Fatalf("go list: %s is not in %s", p.ImportPath, module)
		}
		pkgs[rel] = &p
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages, want the module's", len(pkgs))
	}
	return pkgs
}

// relative returns an import path relative to the module, if it is in it.
func relative(path string) (string, bool) {
	if rel, ok := strings.CutPrefix(path, module+"/"); ok {
		return rel, true
	}
	return "", false
}

// match reports whether the package rel matches the patterns.
func match(patterns []string, rel string) bool {
	in := false
	for _, p := range patterns {
		neg := strings.HasPrefix(p, "!")
		p = strings.TrimPrefix(p, "!")
		var ok bool
		switch {
		case p == "...":
			ok = true
		case p == "*test":
			ok = slices.ContainsFunc(strings.Split(rel, "/"), func(e string) bool { return strings.HasSuffix(e, "test") })
		case strings.HasSuffix(p, "/..."):
			base := strings.TrimSuffix(p, "/...")
			ok = rel == base || strings.HasPrefix(rel, base+"/")
		default:
			ok = rel == p
		}
		if ok {
			in = !neg
			if neg {
				return false
			}
		}
	}
	return in
}

// violations returns every (from, to) pair that breaks r, each with the
// chain of imports from from to to.
func violations(pkgs map[string]*pkg, r rule) map[[2]string][]string {
	found := map[[2]string][]string{}
	for from := range pkgs {
		if !match(r.from, from) {
			continue
		}
		// Breadth first over the module's packages: the shortest chain.
		prev := map[string]string{from: ""}
		queue := []string{from}
		for len(queue) > 0 {
			cur := queue[0]
			queue = queue[1:]
			p := pkgs[cur]
			if p == nil {
				continue
			}
			for _, imp := range p.Imports {
				rel, ok := relative(imp)
				if !ok {
					continue
				}
				if _, seen := prev[rel]; seen {
					continue
				}
				prev[rel] = cur
				queue = append(queue, rel)
				if match(r.not, rel) {
					var chain []string
					for n := rel; n != ""; n = prev[n] {
						chain = append([]string{n}, chain...)
					}
					found[[2]string{from, rel}] = chain
				}
			}
		}
	}
	return found
}

// TestLayering checks every rule against the imports of the module, in the
// default build and with the failpoints tag.
func TestLayering(t *testing.T) {
	// The patterns must name packages that exist, or a rule checks nothing.
	pkgs := list(t, "")
	for _, r := range rules {
		for _, p := range append(slices.Clone(r.from), r.not...) {
			if p == "..." || p == "!..." {
				continue
			}
			if !slices.ContainsFunc(keys(pkgs), func(rel string) bool { return match([]string{strings.TrimPrefix(p, "!")}, rel) }) {
				t.Errorf("rule %s: pattern %q matches no package", r, p)
			}
		}
	}
	// An edge is reported once, with the build tags under which it occurs.
	type broken struct {
		chain []string
		rule  rule
		tags  []string
	}
	found := map[[2]string]*broken{}
	var order [][2]string
	used := map[[2]string]bool{}
	for _, tags := range []string{"", "failpoints"} {
		if tags != "" {
			pkgs = list(t, tags)
		}
		for _, r := range rules {
			v := violations(pkgs, r)
			for _, edge := range sortedEdges(v) {
				if _, ok := knownExceptions[edge]; ok {
					used[edge] = true
					continue
				}
				if b := found[edge]; b != nil {
					if !slices.Contains(b.tags, tags) {
						b.tags = append(b.tags, tags)
					}
					continue
				}
				found[edge] = &broken{chain: v[edge], rule: r, tags: []string{tags}}
				order = append(order, edge)
			}
		}
	}
	for _, edge := range order {
		b := found[edge]
		build := ""
		if !slices.Contains(b.tags, "") {
			build = " with -tags " + strings.Join(b.tags, ",")
		}
		t.Errorf("%s depends on %s (%s)%s, against the rule %s: %s",
			edge[0], edge[1], strings.Join(b.chain, " → "), build, b.rule, b.rule.why)
	}
	for edge, why := range knownExceptions {
		if !used[edge] {
			t.Errorf("known exception %s → %s (%s) no longer occurs: remove it from knownExceptions", edge[0], edge[1], why)
		}
	}
}

// TestFailpointUse checks that the library only places crash points:
// switches (On), arming (Arm, Env) and registering names (Register) are
// for test binaries, and the failpoints exist only in builds with the tag.
// A point is placed by calling failpoint.Hit: `defer failpoint.Hit(…)`, or
// Hit as a value, would keep Hit in default builds (TestDefaultBuildHasNone
// in internal/failpoint would catch it later, less plainly).
func TestFailpointUse(t *testing.T) {
	seen := map[string]bool{}
	for _, tags := range []string{"", "failpoints"} {
		for rel, p := range list(t, tags) {
			if rel == "internal/failpoint" {
				continue
			}
			for _, f := range p.GoFiles {
				path := filepath.Join(p.Dir, f)
				if seen[path] {
					continue
				}
				seen[path] = true
				checkFailpointUse(t, path)
			}
		}
	}
}

func checkFailpointUse(t *testing.T, path string) {
	t.Helper()
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	name := ""
	for _, imp := range file.Imports {
		if v, _ := strconv.Unquote(imp.Path.Value); v == module+"/internal/failpoint" {
			name = "failpoint"
			if imp.Name != nil {
				name = imp.Name.Name
			}
		}
	}
	if name == "" {
		return
	}
	isFP := func(e ast.Expr) (*ast.SelectorExpr, bool) {
		sel, ok := e.(*ast.SelectorExpr)
		if !ok {
			return nil, false
		}
		id, ok := sel.X.(*ast.Ident)
		return sel, ok && id.Name == name
	}
	ok := map[*ast.SelectorExpr]bool{} // Hit in a plain call
	ast.Inspect(file, func(n ast.Node) bool {
		var call *ast.CallExpr
		switch n := n.(type) {
		case *ast.DeferStmt:
			if sel, fp := isFP(n.Call.Fun); fp {
				t.Errorf("%s: defer %s.%s(…): write defer func() { %s.%s(…) }() (a deferred call keeps Hit in default builds)",
					fset.Position(n.Pos()), name, sel.Sel.Name, name, sel.Sel.Name)
				ok[sel] = true // reported
			}
		case *ast.GoStmt:
			if sel, fp := isFP(n.Call.Fun); fp {
				t.Errorf("%s: go %s.%s(…) in library code", fset.Position(n.Pos()), name, sel.Sel.Name)
				ok[sel] = true // reported
			}
		case *ast.CallExpr:
			call = n
		}
		if call != nil {
			if sel, fp := isFP(call.Fun); fp && sel.Sel.Name == "Hit" {
				ok[sel] = true
			}
		}
		if sel, fp := isFP(nilExpr(n)); fp && !ok[sel] && sel.Sel.Name == "Hit" {
			t.Errorf("%s: %s.Hit as a value: call it (a function value keeps Hit in default builds)", fset.Position(sel.Pos()), name)
		} else if fp && !ok[sel] {
			t.Errorf("%s: %s.%s in library code: the library only places points (calls %s.Hit); switches, arming and registration belong to test binaries",
				fset.Position(sel.Pos()), name, sel.Sel.Name, name)
		}
		return true
	})
}

// nilExpr returns n as an expression, or nil.
func nilExpr(n ast.Node) ast.Expr {
	if e, ok := n.(ast.Expr); ok {
		return e
	}
	return nil
}

func (r rule) String() string {
	return fmt.Sprintf("%s ↛ %s", strings.Join(r.from, ", "), strings.Join(r.not, ", "))
}

func keys(pkgs map[string]*pkg) []string {
	var ks []string
	for k := range pkgs {
		ks = append(ks, k)
	}
	return ks
}

func sortedEdges(m map[[2]string][]string) [][2]string {
	var es [][2]string
	for e := range m {
		es = append(es, e)
	}
	slices.SortFunc(es, func(a, b [2]string) int {
		if c := strings.Compare(a[0], b[0]); c != 0 {
			return c
		}
		return strings.Compare(a[1], b[1])
	})
	return es
}
