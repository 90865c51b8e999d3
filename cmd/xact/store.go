package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"google.golang.org/grpc"

	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/storage"
	"github.com/xact-io/xact/storage/embedded"
)

const storeUsage = `Usage:
  xact store verify --data-dir DIR
        check every file and record of a data directory (the coordinator
        must be stopped) and report what is damaged
  xact store verify --backup FILE
        check a backup: restore it into a temporary directory and verify that
  xact store backup --out FILE [--server ADDR] [--token TOKEN] [TLS flags]
        back up a running coordinator (a consistent snapshot; it keeps serving);
        --token is the operators' token (xact server --operator-token, or its
        --token when it has none)
  xact store backup --out FILE --data-dir DIR
        back up the data directory of a stopped coordinator
  xact store restore --in FILE --data-dir DIR
        restore a backup into DIR, which must not exist or be empty

The TLS flags of backup --server are those of xact tx: --tls, --tls-ca FILE,
--tls-cert FILE with --tls-key FILE (mutual TLS), --tls-server-name NAME.

A backup is checked end to end (every frame and record checksum, the
counts in its trailer) when it is written, verified and restored.
--data-dir, --server, --token and the TLS flags can also be set as
XACT_DATA_DIR, XACT_SERVER, XACT_TOKEN (which ps does not show), XACT_TLS_CA,
XACT_TLS_CERT, ... See docs/operations.md.
`

// storeCmd runs `xact store ...`: verify, backup and restore of the
// embedded store's data directory.
func storeCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, storeUsage)
		if len(args) == 0 {
			return errors.New("want a subcommand: verify, backup, restore")
		}
		return nil
	}
	fs := flag.NewFlagSet("xact store "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, storeUsage) }
	dataDir := fs.String("data-dir", "", "the coordinator's data `directory`")
	cf := storeClientFlags(fs)
	out := fs.String("out", "", "write the backup to this `file`")
	in := fs.String("in", "", "restore the backup in this `file`")
	backup := fs.String("backup", "", "verify the backup in this `file`")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	envDefault(fs, append([]string{"data-dir"}, storeClientFlagNames...)...)
	switch args[0] {
	case "verify":
		switch {
		case *backup != "" && *dataDir != "":
			return errors.New("give --data-dir or --backup, not both")
		case *backup != "":
			return verifyBackup(*backup, stdout)
		case *dataDir != "":
			return verifyDir(*dataDir, stdout)
		}
		return errors.New("want --data-dir DIR or --backup FILE")
	case "backup":
		if *out == "" {
			return errors.New("want --out FILE")
		}
		if *dataDir != "" {
			if isSet(fs, "server") {
				return errors.New("give --data-dir (coordinator stopped) or --server (running), not both")
			}
			return backupFile(*out, stdout, func(w io.Writer) error { return backupDir(ctx, *dataDir, w) })
		}
		// Dial (which reads the TLS files) before the backup file is made.
		conn, err := cf.dial(fs.Name())
		if err != nil {
			return err
		}
		defer conn.Close()
		return backupFile(*out, stdout, func(w io.Writer) error { return backupServer(ctx, conn, cf, w) })
	case "restore":
		if *in == "" || *dataDir == "" {
			return errors.New("want --in FILE and --data-dir DIR")
		}
		f, err := os.Open(*in)
		if err != nil {
			return err
		}
		defer f.Close()
		info, err := embedded.Restore(*dataDir, f)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "restored %s into %s: %d globals, %d branches, %d tombstones; verified\n",
			*in, *dataDir, info.Globals, info.Branches, info.Tombstones)
		return nil
	}
	return fmt.Errorf("unknown subcommand %q: want verify, backup or restore", args[0])
}

// storeClientFlagNames are the flags of clientFlags that `xact store
// backup --server` takes: all but --json.
var storeClientFlagNames = []string{"server", "token", "tls", "tls-ca", "tls-cert", "tls-key", "tls-server-name"}

// storeClientFlags registers on fs the client flags of `xact tx` that
// `xact store backup --server` takes (the same values and help, so that
// it reaches a coordinator the way xact tx does) and returns them.
func storeClientFlags(fs *flag.FlagSet) *clientFlags {
	cf := new(clientFlags)
	all := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
	cf.register(all)
	for _, name := range storeClientFlagNames {
		f := all.Lookup(name)
		usage := f.Usage
		if name == "token" {
			usage = "the operators' bearer `token` (xact server --operator-token, or its --token when it has none); better set as XACT_TOKEN, which ps does not show"
		}
		fs.Var(f.Value, name, usage)
	}
	return cf
}

// isSet reports whether the flag name was set, on the command line or by
// envDefault.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// envDefault sets the named flags that are not on the command line from
// XACT_<NAME>.
func envDefault(fs *flag.FlagSet, names ...string) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, name := range names {
		env := "XACT_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok && !set[name] {
			fs.Set(name, v)
		}
	}
}

func verifyDir(dir string, stdout io.Writer) error {
	if _, err := os.Stat(dir); err != nil {
		return err
	}
	rep, err := embedded.Verify(dir)
	if errors.Is(err, storage.ErrLocked) {
		return fmt.Errorf("%w: stop the coordinator first, or check a backup of it: "+
			"xact store backup --server ADDR --out FILE && xact store verify --backup FILE", err)
	}
	if err != nil {
		return err
	}
	rep.WriteTo(stdout)
	if !rep.OK() {
		return fmt.Errorf("%s is damaged (%d problems); see docs/operations.md", dir, len(rep.Damage))
	}
	return nil
}

func verifyBackup(file string, stdout io.Writer) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	tmp, err := os.MkdirTemp("", "xact-verify-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, "data")
	info, err := embedded.Restore(dir, f)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	rep, err := embedded.Verify(dir)
	if err != nil {
		return err
	}
	rep.Dir = file + " (restored)"
	rep.WriteTo(stdout)
	if !rep.OK() {
		return fmt.Errorf("%s is damaged", file)
	}
	fmt.Fprintf(stdout, "backup %s: %d globals, %d branches, %d tombstones\n", file, info.Globals, info.Branches, info.Tombstones)
	return nil
}

// backupFile writes a backup with write into a temporary file next to
// path, syncs it, checks it and renames it to path: path never holds a
// partial or unchecked backup.
func backupFile(path string, stdout io.Writer, write func(io.Writer) error) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := write(tmp); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return err
	}
	info, err := embedded.CheckBackup(tmp)
	if err != nil {
		return fmt.Errorf("the backup written does not check: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	fmt.Fprintf(stdout, "backup %s: %d globals, %d branches, %d tombstones\n", path, info.Globals, info.Branches, info.Tombstones)
	return nil
}

func backupDir(ctx context.Context, dir string, w io.Writer) error {
	if _, err := os.Stat(dir); err != nil {
		return err
	}
	s, err := embedded.Open(dir)
	if errors.Is(err, storage.ErrLocked) {
		return fmt.Errorf("%w: the coordinator is running; back it up with --server ADDR", err)
	}
	if err != nil {
		return err
	}
	_, err = s.Backup(ctx, w)
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	return err
}

// backupServer streams the backup of the coordinator conn reaches (the
// Admin service's Backup) into w.
func backupServer(ctx context.Context, conn *grpc.ClientConn, cf *clientFlags, w io.Writer) error {
	stream, err := xactpb.NewAdminClient(conn).Backup(ctx, &xactpb.BackupRequest{})
	if err != nil {
		return fmt.Errorf("backup from %s: %w", cf.server, cf.rpcError(err))
	}
	for {
		chunk, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("backup from %s: %w", cf.server, cf.rpcError(err))
		}
		if _, err := w.Write(chunk.GetData()); err != nil {
			return err
		}
	}
}
