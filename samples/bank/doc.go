// Package bank is xact's bank sample: three services that transfer money
// between accounts and record it in a ledger, each transfer one global
// transaction, in AT, TCC or saga mode. See README.md.
//
//   - api (package api, cmd/api): begins and ends the transaction (tm.Do),
//     and orchestrates the saga;
//   - account (package account, cmd/account): balances, in a database of
//     its own, through the AT data source;
//   - ledger (package ledger, cmd/ledger): entries, in another database,
//     as an AT branch, a TCC participant or a saga step;
//   - cmd/bank: the client.
//
// The test in this directory runs the whole flow in one process against
// an in-process coordinator and a private MariaDB.
package bank
