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
	"google.golang.org/grpc/credentials/insecure"

	"github.com/xact-io/xact/protocol"
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
  xact store backup --out FILE [--server ADDR] [--token TOKEN]
        back up a running coordinator (a consistent snapshot; it keeps serving)
  xact store backup --out FILE --data-dir DIR
        back up the data directory of a stopped coordinator
  xact store restore --in FILE --data-dir DIR
        restore a backup into DIR, which must not exist or be empty

A backup is checked end to end (every frame and record checksum, the
counts in its trailer) when it is written, verified and restored.
--data-dir, --server and --token can also be set as XACT_DATA_DIR,
XACT_SERVER and XACT_TOKEN. See docs/operations.md.
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
	server := fs.String("server", "", "a running coordinator's `address` (default 127.0.0.1:8091)")
	token := fs.String("token", "", "the bearer `token` the coordinator requires")
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
	envDefault(fs, "data-dir", "server", "token")
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
			if *server != "" {
				return errors.New("give --data-dir (coordinator stopped) or --server (running), not both")
			}
			return backupFile(*out, stdout, func(w io.Writer) error { return backupDir(ctx, *dataDir, w) })
		}
		addr := *server
		if addr == "" {
			addr = "127.0.0.1:8091"
		}
		return backupFile(*out, stdout, func(w io.Writer) error { return backupServer(ctx, addr, *token, w) })
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

// bearer is the token credential of the store commands.
type bearer string

func (t bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(t)}, nil
}
func (bearer) RequireTransportSecurity() bool { return false }

func backupServer(ctx context.Context, addr, token string, w io.Writer) error {
	opts := append(protocol.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(token)))
	}
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return err
	}
	defer conn.Close()
	stream, err := xactpb.NewAdminClient(conn).Backup(ctx, &xactpb.BackupRequest{})
	if err != nil {
		return protocol.FromStatus(err)
	}
	for {
		chunk, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("backup from %s: %w", addr, protocol.FromStatus(err))
		}
		if _, err := w.Write(chunk.GetData()); err != nil {
			return err
		}
	}
}
