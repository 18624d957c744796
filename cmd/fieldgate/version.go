package main

import (
	"fmt"
	"io"
	"runtime"
)

// Set at build time by deploy's cross-build:
// -ldflags "-X main.version=… -X main.commit=… -X main.date=…".
var (
	version = "dev"
	commit  = "unknown"
	date    = "unknown"
)

func printVersion(w io.Writer) error {
	_, err := fmt.Fprintf(w, "fieldgate %s (commit %s, built %s, %s %s/%s)\n", version, commit, date, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return err
}
