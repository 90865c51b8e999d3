// Package layering holds no code: its test checks the package picture of
// docs/architecture.md ("Layering") against the imports of the module, so
// that the layering stays true without a reviewer. The rules, and why each
// holds, are the table in layering_test.go; go test ./internal/layering
// names every edge that breaks one.
package layering
