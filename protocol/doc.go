// Package protocol holds xact's wire protocol: xact.proto, the generated
// code in protocol/xactpb, and the error vocabulary that maps the sentinel
// errors of the TC to gRPC status codes and back.
//
// A handler returns ToStatus(err); a client passes the error of every call
// through FromStatus, after which errors.Is(err, protocol.ErrNotFound) and
// friends work exactly as on the server.
package protocol

//go:generate protoc -I . --go_out=xactpb --go_opt=paths=source_relative --go-grpc_out=xactpb --go-grpc_opt=paths=source_relative xact.proto
