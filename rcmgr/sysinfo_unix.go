//go:build unix

package rcmgr

import "syscall"

// fdLimit returns the soft limit on open files, RLIMIT_NOFILE.
func fdLimit() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == 0 {
		return fallbackFDs
	}
	if rl.Cur > maxFDs {
		return maxFDs
	}
	return int(rl.Cur)
}
