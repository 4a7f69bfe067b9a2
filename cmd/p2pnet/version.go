package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

// versionInfo is what 'p2pnet version' prints, and its JSON line.
type versionInfo struct {
	Type string `json:"type"` // "result"
	// Version is the module version: a release tag, a pseudo-version
	// derived from the commit, or "(devel)".
	Version string `json:"version"`
	// Commit is the VCS revision the binary was built from, if known.
	Commit string `json:"commit,omitempty"`
	// CommitTime is the time of that commit, RFC 3339.
	CommitTime string `json:"commit_time,omitempty"`
	// Modified is true when the working tree had local changes.
	Modified bool `json:"modified"`
	// Go is the Go version that built the binary.
	Go string `json:"go"`
	// Platform is GOOS/GOARCH.
	Platform string `json:"platform"`
}

// readVersion reads the version from the binary's build information.
func readVersion() versionInfo {
	v := versionInfo{Type: "result", Version: "unknown", Go: runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if bi.Main.Version != "" {
		v.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit = s.Value
		case "vcs.time":
			v.CommitTime = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

// String is the version on one line.
func (v versionInfo) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "p2pnet %s, ", v.Version)
	if v.Commit == "" {
		b.WriteString("commit unknown")
	} else {
		fmt.Fprintf(&b, "commit %s", v.Commit)
		var notes []string
		if v.CommitTime != "" {
			notes = append(notes, v.CommitTime)
		}
		if v.Modified {
			notes = append(notes, "with local changes")
		}
		if len(notes) > 0 {
			fmt.Fprintf(&b, " (%s)", strings.Join(notes, ", "))
		}
	}
	fmt.Fprintf(&b, ", %s %s", v.Go, v.Platform)
	return b.String()
}

func runVersion(args []string, stdout, stderr io.Writer) error {
	fl := newFlags("version", stderr)
	asJSON := fl.Bool("json", false, "print a JSON object")
	if err := parseFlags(fl, args); err != nil {
		return err
	}
	if err := noArgs(fl); err != nil {
		return err
	}
	out := printer{w: stdout, json: *asJSON}
	v := readVersion()
	out.textf("%s", v)
	out.emit(v)
	return nil
}
