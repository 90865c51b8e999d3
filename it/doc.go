// Package it holds xact's end-to-end tests: real `xact server` processes
// (built from ../cmd/xact), killed with SIGKILL and restarted on the same
// data directory, real gRPC, and RMs that come and go. The invariants of
// DESIGN.md (I1-I11) are checked after every fault.
package it
