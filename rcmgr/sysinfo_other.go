//go:build !unix

package rcmgr

// fdLimit returns fallbackFDs: this system has no RLIMIT_NOFILE.
func fdLimit() int { return fallbackFDs }
