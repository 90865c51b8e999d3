package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// errHelp: the help that was asked for is printed.
var errHelp = errors.New("help")

// usageError is a command line that is wrong as written (an unknown flag, a
// value that does not parse, a missing argument). run prints it with a
// pointer to the command's help and exits with 2.
type usageError struct {
	cmd string // "xact tx show"
	err error
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usagef returns a *usageError of cmd.
func usagef(cmd, format string, args ...any) error {
	return &usageError{cmd: cmd, err: fmt.Errorf(format, args...)}
}

// newFlagSet returns the flag set of the command name ("xact tx show"),
// whose --help prints synopsis (the command line after name), about (what
// the command does, one or more lines) and the flags to help.
func newFlagSet(name, synopsis, about string, help io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(help)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: %s %s\n\n%s\n", name, synopsis, strings.TrimRight(about, "\n"))
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintf(w, "\nFlags:\n")
			printDefaults(w, fs)
		}
	}
	return fs
}

// printDefaults prints fs's flags as flag.PrintDefaults does, with two
// dashes, as the documentation writes them, and "duration" for the
// durations of durationVar.
func printDefaults(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		if _, ok := f.Value.(*durationValue); ok && name == "value" {
			name = "duration"
		}
		line := "  --" + f.Name
		if name != "" {
			line += " " + name
		}
		fmt.Fprintf(w, "%s\n    \t%s", line, strings.ReplaceAll(usage, "\n", "\n    \t"))
		switch f.DefValue {
		case "", "false", "0", "0s":
		default:
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}

// durationValue is a time.Duration flag whose error says what is wrong
// with the value (the flag package's says only "parse error"), above all
// a missing unit: --default-timeout 10.
type durationValue time.Duration

func durationVar(fs *flag.FlagSet, p *time.Duration, name string, value time.Duration, usage string) {
	*p = value
	fs.Var((*durationValue)(p), name, usage)
}

func (d *durationValue) String() string { return (*time.Duration)(d).String() }

func (d *durationValue) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		if _, nerr := strconv.ParseFloat(s, 64); nerr == nil {
			return fmt.Errorf("a duration needs a unit: %ss, %sms, %sm, ...", s, s, s)
		}
		return errors.New("want a duration such as 10s, 500ms or 1m30s")
	}
	*d = durationValue(v)
	return nil
}

// parseFlags parses args into fs with this precedence: command-line flags,
// then XACT_<NAME> environment variables (name upper-cased, dashes as
// underscores), then the config file named by the --config flag (if fs has
// one): lines of "name = value", # comments.
//
// Flags may come before or after positional arguments (`xact tx show XID
// --json`); the positional ones are returned.
//
// --help prints the flag set's usage to its output; any other error is a
// *usageError, and nothing is printed: the flag package would print the
// whole usage, which buries the one line that says what is wrong.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	help := fs.Output()
	var buf bytes.Buffer
	fs.SetOutput(&buf)
	defer fs.SetOutput(help)
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				help.Write(buf.Bytes())
				return nil, errHelp
			}
			return nil, &usageError{cmd: fs.Name(), err: err}
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		env := "XACT_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, &usageError{cmd: fs.Name(), err: fmt.Errorf("%s=%s: %w", env, v, err)})
			}
			set[f.Name] = true
		}
	})
	if cf := fs.Lookup("config"); cf != nil && cf.Value.String() != "" {
		if err := applyConfigFile(fs, cf.Value.String(), set); err != nil {
			errs = append(errs, err)
		}
	}
	return positional, errors.Join(errs...)
}

func applyConfigFile(fs *flag.FlagSet, path string, set map[string]bool) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok {
			return fmt.Errorf("%s:%d: want \"name = value\", got %q", path, n, line)
		}
		name, value = strings.TrimSpace(name), strings.Trim(strings.TrimSpace(value), `"`)
		if fs.Lookup(name) == nil || name == "config" {
			return fmt.Errorf("%s:%d: unknown setting %q", path, n, name)
		}
		if set[name] {
			continue
		}
		if err := fs.Set(name, value); err != nil {
			return fmt.Errorf("%s:%d: %s: %w", path, n, name, err)
		}
	}
	return sc.Err()
}
