// Package bankpb is the bank sample's gRPC API (bank.proto) and its
// generated code, plus request validation (validate.go).
//
// Regenerate after editing bank.proto (protoc, protoc-gen-go v1.36.12 and
// protoc-gen-go-grpc v1.5.1, as `make proto` installs them for the main
// module):
//
//	go generate ./bank/bankpb
package bankpb

//go:generate protoc -I . --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative bank.proto
