package mysqldialect

import (
	"database/sql/driver"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/format"
	"github.com/pingcap/tidb/pkg/parser/test_driver"
)

// Kind classifies a statement for AT mode.
type Kind uint8

// The kinds of statements.
const (
	// KindOther needs no undo and no lock keys: plain SELECT, SHOW, SET,
	// EXPLAIN, DO. It runs unchanged.
	KindOther Kind = iota
	// KindSelectForUpdate is SELECT … FOR UPDATE: it needs the lock keys of
	// the rows it locks, to ask the TC whether other global transactions
	// hold them.
	KindSelectForUpdate
	// KindInsert is INSERT, INSERT IGNORE, INSERT … ON DUPLICATE KEY UPDATE.
	KindInsert
	// KindUpdate is single- or multi-table UPDATE.
	KindUpdate
	// KindDelete is single- or multi-table DELETE.
	KindDelete
	// KindDDL changes the schema: refused inside a branch; outside one, the
	// caller should Invalidate cached metadata.
	KindDDL
	// KindUnsupported is anything else that writes or ends a transaction
	// (REPLACE, LOAD DATA, CALL, COMMIT, …): refused inside a branch.
	KindUnsupported
	// KindSavepoint is SAVEPOINT, ROLLBACK [WORK] TO [SAVEPOINT] and
	// RELEASE SAVEPOINT (Statement.Savepoint says which, and the name). It
	// is not planned: it runs unchanged, and once the database has
	// accepted it the caller moves its own marks in the transaction's undo
	// records and lock keys as the database moved its savepoints.
	KindSavepoint
)

var kindNames = [...]string{"other", "select for update", "insert", "update", "delete", "ddl", "unsupported", "savepoint"}

// String returns the kind's name.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Statement is one parsed SQL statement. It may be planned any number of
// times (a prepared statement's executions), also concurrently.
type Statement struct {
	// mu serializes planning: walking the AST writes its child pointers.
	mu     sync.Mutex
	kind   Kind
	node   ast.StmtNode // nil when the parser could not read a read-only statement
	params []*param     // placeholders in text order
	// returning is MariaDB's RETURNING list, cut off before parsing, and
	// trailing the number of placeholders in it (after all others).
	returning string
	trailing  int
	// reason says why a KindUnsupported or KindDDL statement is refused.
	reason string
	// savepoint is what a KindSavepoint statement does.
	savepoint Savepoint
}

// Kind returns the statement's kind.
func (s *Statement) Kind() Kind { return s.kind }

// Savepoint returns what a KindSavepoint statement does, and the zero
// Savepoint for other kinds.
func (s *Statement) Savepoint() Savepoint { return s.savepoint }

// SavepointOp is what a savepoint statement does. The semantics are
// MySQL's and MariaDB's (InnoDB): a transaction has an ordered list of
// savepoints.
type SavepointOp uint8

// The savepoint statements.
const (
	// SavepointSet is SAVEPOINT name: a savepoint at the current position,
	// appended to the list; one of the same name is removed first.
	SavepointSet SavepointOp = iota + 1
	// SavepointRollback is ROLLBACK [WORK] TO [SAVEPOINT] name: the
	// changes made after the savepoint are undone (its row locks are
	// kept); the savepoint stays, later ones are removed.
	SavepointRollback
	// SavepointRelease is RELEASE SAVEPOINT name: the savepoint and every
	// later one are removed; nothing is undone.
	SavepointRelease
)

var savepointOpNames = [...]string{"", "SAVEPOINT", "ROLLBACK TO SAVEPOINT", "RELEASE SAVEPOINT"}

// String returns the statement's SQL keywords.
func (op SavepointOp) String() string {
	if int(op) < len(savepointOpNames) && op != 0 {
		return savepointOpNames[op]
	}
	return fmt.Sprintf("savepoint op(%d)", op)
}

// Savepoint is the savepoint statement of a KindSavepoint statement.
type Savepoint struct {
	Op SavepointOp
	// Name is the savepoint's name as written, without its backquotes.
	Name string
}

// Key returns the savepoint's name as the server compares names:
// case-insensitively. The server compares with its system collation,
// which also equates accented letters with plain ones; Parse refuses
// names outside ASCII in a branch, where ASCII case folding is exactly
// the server's comparison.
func (sp Savepoint) Key() string { return strings.ToLower(sp.Name) }

// Returning reports whether the statement has MariaDB's RETURNING clause
// (INSERT … RETURNING, DELETE … RETURNING): it returns rows, so it runs
// through QueryContext and has no driver.Result.
func (s *Statement) Returning() bool { return s.returning != "" }

// NumInput returns the number of placeholders in the statement, or -1 if
// it was not parsed.
func (s *Statement) NumInput() int {
	if s.node == nil {
		return -1
	}
	return len(s.params) + s.trailing
}

var parsers = sync.Pool{New: func() any { return parser.New() }}

// Parse parses one statement and classifies it. Syntax the TiDB parser
// does not know is accepted only for statements that cannot write
// (SELECT without FOR UPDATE, SHOW, …) and for MariaDB's RETURNING clause,
// which is cut off before parsing; anything else unparseable is refused
// with ErrUnsupported, as is more than one statement.
func Parse(query string) (st *Statement, err error) {
	defer func() {
		if r := recover(); r != nil {
			st, err = nil, unsupported("the SQL parser failed on this statement: %v", r)
		}
	}()
	p := parsers.Get().(*parser.Parser)
	defer parsers.Put(p)
	nodes, _, perr := p.ParseSQL(query)
	returning := ""
	if perr != nil {
		toks := lex(query)
		for _, off := range returningOffsets(toks) {
			rest := strings.TrimSpace(query[off+len("RETURNING"):])
			if rest == "" {
				continue
			}
			n, _, err := p.ParseSQL(query[:off])
			if err != nil || len(n) != 1 {
				continue
			}
			switch x := n[0].(type) {
			case *ast.DeleteStmt:
			case *ast.InsertStmt:
				if x.IsReplace {
					return nil, unsupported("REPLACE … RETURNING: REPLACE deletes rows it cannot image in advance")
				}
			default:
				continue
			}
			nodes, perr, returning = n, nil, rest
			break
		}
	}
	if perr != nil {
		// MySQL's ROLLBACK [WORK] TO [SAVEPOINT] name; the TiDB parser
		// does not know WORK there.
		if n, ok := parseWithoutWork(p, query); ok {
			nodes, perr = n, nil
		}
	}
	if perr != nil {
		toks := lex(query)
		switch firstKeyword(toks) {
		case "SELECT", "SHOW", "DESC", "DESCRIBE", "EXPLAIN", "HELP", "VALUES", "TABLE":
			if !hasWords(toks, "FOR", "UPDATE") {
				return &Statement{kind: KindOther}, nil
			}
		}
		return nil, fmt.Errorf("%w: cannot parse it: %v", ErrUnsupported, perr)
	}
	if len(nodes) != 1 {
		return nil, unsupported("%d statements in one query; send them one by one", len(nodes))
	}
	st = &Statement{node: nodes[0], returning: returning}
	for _, tk := range lex(returning) {
		if tk.kind == tokPunct && tk.text == "?" {
			st.trailing++
		}
	}
	st.params = replaceParams(st.node)
	st.kind, st.reason = classify(st.node)
	if st.kind == KindSavepoint {
		st.savepoint = savepointOf(st.node)
	} else if r, ok := st.node.(*ast.RollbackStmt); ok && r.SavepointName == "" && hasWords(lex(query), "TO") {
		// The parser reads ROLLBACK TO SAVEPOINT `` as a plain ROLLBACK.
		st.reason = "ROLLBACK TO a savepoint with an empty name: use a name"
	}
	return st, nil
}

// parseWithoutWork parses a ROLLBACK WORK … statement without its WORK
// (the statement still runs as written).
func parseWithoutWork(p *parser.Parser, query string) ([]ast.StmtNode, bool) {
	toks := lex(query)
	if len(toks) < 2 || firstKeyword(toks) != "ROLLBACK" || toks[0].kind != tokWord ||
		toks[1].kind != tokWord || !strings.EqualFold(toks[1].text, "WORK") {
		return nil, false
	}
	w := toks[1]
	n, _, err := p.ParseSQL(query[:w.pos] + query[w.pos+len(w.text):])
	if err != nil || len(n) != 1 {
		return nil, false
	}
	if _, ok := n[0].(*ast.RollbackStmt); !ok {
		return nil, false
	}
	return n, true
}

// savepointOf returns the savepoint statement of a node classified
// KindSavepoint.
func savepointOf(n ast.StmtNode) Savepoint {
	switch x := n.(type) {
	case *ast.SavepointStmt:
		return Savepoint{Op: SavepointSet, Name: x.Name}
	case *ast.RollbackStmt:
		return Savepoint{Op: SavepointRollback, Name: x.SavepointName}
	case *ast.ReleaseSavepointStmt:
		return Savepoint{Op: SavepointRelease, Name: x.Name}
	}
	return Savepoint{}
}

// savepointKind classifies a savepoint statement by its name: KindSavepoint,
// or refused if the wrapper could not follow the server's comparison of
// the name.
func savepointKind(name string) (Kind, string) {
	if name == "" {
		return KindUnsupported, "a savepoint with an empty name: use a name"
	}
	for i := 0; i < len(name); i++ {
		if name[i] >= 0x80 {
			return KindUnsupported, fmt.Sprintf("savepoint name %q is not ASCII: the server compares such names accent-insensitively, which the wrapper does not reproduce; use an ASCII name", name)
		}
	}
	return KindSavepoint, ""
}

// classify returns the statement's kind and, for refused kinds, why.
func classify(n ast.StmtNode) (Kind, string) {
	switch x := n.(type) {
	case *ast.SelectStmt:
		if x.LockInfo != nil && isForUpdate(x.LockInfo.LockType) {
			return KindSelectForUpdate, ""
		}
		return KindOther, ""
	case *ast.SetOprStmt:
		if setOprLocks(x) {
			return KindUnsupported, "UNION/INTERSECT/EXCEPT with FOR UPDATE: lock keys cannot be built; lock each SELECT separately"
		}
		return KindOther, ""
	case *ast.InsertStmt:
		if x.IsReplace {
			return KindUnsupported, "REPLACE deletes and inserts rows it cannot image in advance; use INSERT … ON DUPLICATE KEY UPDATE"
		}
		return KindInsert, ""
	case *ast.UpdateStmt:
		return KindUpdate, ""
	case *ast.DeleteStmt:
		return KindDelete, ""
	case *ast.ShowStmt, *ast.ExplainStmt, *ast.DoStmt, *ast.HelpStmt:
		if e, ok := x.(*ast.ExplainStmt); ok && e.Analyze {
			return KindUnsupported, "EXPLAIN ANALYZE runs the statement"
		}
		return KindOther, ""
	case *ast.SetStmt:
		for _, v := range x.Variables {
			if strings.EqualFold(v.Name, "autocommit") {
				return KindUnsupported, "SET autocommit ends the local transaction"
			}
			if strings.EqualFold(v.Name, "completion_type") {
				return KindUnsupported, "SET completion_type makes COMMIT chain a new transaction or close the connection behind the wrapper's back"
			}
		}
		return KindOther, ""
	case *ast.BeginStmt:
		return KindUnsupported, "START TRANSACTION or BEGIN in SQL text commits the local transaction; begin transactions with database/sql (BeginTx) and nest work with SAVEPOINT"
	case *ast.CommitStmt:
		return KindUnsupported, "COMMIT in SQL text ends the local transaction behind the wrapper's back (no branch, no undo log, no lock check); call Tx.Commit"
	case *ast.RollbackStmt:
		if x.SavepointName != "" {
			return savepointKind(x.SavepointName)
		}
		return KindUnsupported, "ROLLBACK in SQL text ends the local transaction behind the wrapper's back; call Tx.Rollback, or ROLLBACK TO SAVEPOINT to undo part of it"
	case *ast.SavepointStmt:
		return savepointKind(x.Name)
	case *ast.ReleaseSavepointStmt:
		return savepointKind(x.Name)
	case *ast.LoadDataStmt:
		return KindUnsupported, "LOAD DATA inserts rows it cannot image"
	case *ast.CallStmt:
		return KindUnsupported, "CALL runs a procedure whose writes cannot be imaged"
	case *ast.UseStmt:
		return KindUnsupported, "USE changes the branch's database"
	case *ast.LockTablesStmt, *ast.UnlockTablesStmt:
		return KindUnsupported, "LOCK/UNLOCK TABLES commits the local transaction"
	case ast.DDLNode:
		return KindDDL, "DDL commits the local transaction and cannot be undone; run it outside global transactions"
	}
	return KindUnsupported, fmt.Sprintf("%s cannot be undone", strings.TrimPrefix(fmt.Sprintf("%T", n), "*ast."))
}

func isForUpdate(t ast.SelectLockType) bool {
	switch t {
	case ast.SelectLockForUpdate, ast.SelectLockForUpdateNoWait, ast.SelectLockForUpdateWaitN, ast.SelectLockForUpdateSkipLocked:
		return true
	}
	return false
}

// setOprLocks reports whether any SELECT of a set operation locks rows.
func setOprLocks(n *ast.SetOprStmt) bool {
	found := false
	n.Accept(&visitor{enter: func(n ast.Node) bool {
		if s, ok := n.(*ast.SelectStmt); ok && s.LockInfo != nil && isForUpdate(s.LockInfo.LockType) {
			found = true
		}
		return false
	}})
	return found
}

// Classify parses query and returns its kind, or KindUnsupported if it
// cannot be parsed. Outside branches, a wrapper calls it to notice DDL and
// invalidate cached metadata.
func Classify(query string) Kind {
	st, err := Parse(query)
	if err != nil {
		return KindUnsupported
	}
	return st.kind
}

// visitor adapts functions to ast.Visitor.
type visitor struct {
	enter func(ast.Node) (skip bool)
	leave func(ast.Node) ast.Node
}

func (v *visitor) Enter(n ast.Node) (ast.Node, bool) {
	if v.enter == nil {
		return n, false
	}
	return n, v.enter(n)
}

func (v *visitor) Leave(n ast.Node) (ast.Node, bool) {
	if v.leave != nil {
		n = v.leave(n)
	}
	return n, true
}

// param is a placeholder that knows its position among the statement's
// arguments. It replaces the parser's marker so that restoring any part of
// the tree reports which argument each "?" it writes stands for, whatever
// order the parts are restored in.
type param struct {
	*test_driver.ParamMarkerExpr
	index int // 0-based argument index
}

// Restore writes "?" and records the argument it stands for.
func (p *param) Restore(ctx *format.RestoreCtx) error {
	if w, ok := ctx.In.(*sqlBuf); ok {
		w.userParam(p.index)
	}
	ctx.WritePlain("?")
	return nil
}

// GetValue returns a non-nil marker: the parser's restore of TRIM(? FROM
// s) skips a value argument whose value is nil and would drop the
// placeholder. (sqlBuf.restore still checks that no placeholder is lost.)
func (p *param) GetValue() any { return placeholder{} }

type placeholder struct{}

// Accept keeps the param node itself in the tree.
func (p *param) Accept(v ast.Visitor) (ast.Node, bool) {
	n, skip := v.Enter(p)
	if skip {
		return v.Leave(n)
	}
	return v.Leave(n)
}

// replaceParams swaps the parser's placeholders for params numbered in
// text order.
func replaceParams(n ast.Node) []*param {
	var ps []*param
	n.Accept(&visitor{leave: func(n ast.Node) ast.Node {
		if m, ok := n.(*test_driver.ParamMarkerExpr); ok {
			p := &param{ParamMarkerExpr: m}
			ps = append(ps, p)
			return p
		}
		return n
	}})
	slices.SortFunc(ps, func(a, b *param) int { return a.Offset - b.Offset })
	for i, p := range ps {
		p.index = i
	}
	return ps
}

// countParams returns the number of placeholders under n.
func countParams(n ast.Node) int {
	c := 0
	n.Accept(&visitor{enter: func(n ast.Node) bool {
		if _, ok := n.(*param); ok {
			c++
		}
		return false
	}})
	return c
}

// sqlBuf builds a statement from restored AST parts and own text, keeping
// its arguments in placeholder order.
type sqlBuf struct {
	strings.Builder
	user []driver.NamedValue // the original statement's arguments
	args []any
	err  error
}

func (b *sqlBuf) userParam(i int) {
	if i < len(b.user) {
		b.args = append(b.args, b.user[i].Value)
		return
	}
	if b.err == nil {
		b.err = fmt.Errorf("mysql: statement has more placeholders than the %d arguments given", len(b.user))
	}
}

// bind writes "?" (or expr, which holds one "?") and appends arg.
func (b *sqlBuf) bind(expr string, arg any) {
	if expr == "" {
		expr = "?"
	}
	b.WriteString(expr)
	b.args = append(b.args, arg)
}

// restoreFlags restore literals the way MySQL reads them with backslash
// escapes on (the default sql_mode) and without adding charset
// introducers the original did not have.
const restoreFlags = format.RestoreStringSingleQuotes | format.RestoreStringEscapeBackslash |
	format.RestoreKeyWordUppercase | format.RestoreNameBackQuotes | format.RestoreStringWithoutDefaultCharset

// restore writes n as SQL. It checks that every placeholder under n was
// written, since a restore that dropped one would silently change the
// statement.
func (b *sqlBuf) restore(n ast.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = unsupported("cannot rebuild part of the statement: %v", r)
		}
	}()
	before := len(b.args)
	if err := n.Restore(format.NewRestoreCtx(restoreFlags, b)); err != nil {
		return unsupported("cannot rebuild part of the statement: %v", err)
	}
	if b.err != nil {
		return b.err
	}
	if got, want := len(b.args)-before, countParams(n); got != want {
		return unsupported("rebuilding part of the statement kept %d of its %d placeholders", got, want)
	}
	return nil
}

// quote quotes an identifier with backticks, doubling backticks inside.
func quote(name string) string {
	return "`" + strings.ReplaceAll(name, "`", "``") + "`"
}
