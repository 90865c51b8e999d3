//go:build !failpoints

package it

// The suite arms failpoints, which exist only in builds with the
// failpoints tag: go test -tags failpoints (see README.md).
var _ = the_it_suite_needs_go_test_tags_failpoints
