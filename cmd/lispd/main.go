// Command lispd is the LISP daemon: Map-Server and Map-Resolver today, and
// the xTR roles as they land. Its config file chooses the roles.
//
//	lispd -c /etc/lispd/lispd.toml     run
//	lispd -c lispd.toml -check         validate the config and exit
//
// SIGTERM and SIGINT stop it cleanly; SIGHUP reloads the config file and
// applies only what changed (a bad new config is refused and the running one
// stays).
//
// Exit status: 0 after a clean stop (or a valid config with -check), 1 when
// it cannot start, 2 for a bad command line or an invalid config.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/lispd/lispd/config"
	"github.com/lispd/lispd/daemon"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("lispd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "/etc/lispd/lispd.toml", "config file")
	check := fs.Bool("check", false, "validate the config file and exit")
	version := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: lispd [-c FILE] [-check] [-version]\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "lispd: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	if *version {
		fmt.Fprintln(stdout, "lispd", daemon.Version)
		return 0
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "lispd: %v\n", err)
		return 2
	}
	d, err := daemon.New(cfg, daemon.Options{Stderr: stderr})
	if err != nil {
		fmt.Fprintf(stderr, "lispd: %s: %v\n", *path, err)
		return 2
	}
	if *check {
		fmt.Fprintf(stdout, "%s: ok\n", *path)
		return 0
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() { // RoutineReloadOnHUP
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				// Reload logs its own outcome.
				_ = d.Reload(ctx)
			}
		}
	}()
	if err := d.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "lispd: %v\n", err)
		return 1
	}
	return 0
}
