package rcmgr

import (
	"bufio"
	"bytes"
	"math"
	"os"
	"runtime/debug"
	"strconv"
)

// totalMemory returns the memory this process may use: the Go memory
// limit when one is set, else the machine's total memory, else
// fallbackTotalMemory.
func totalMemory() int64 {
	if l := debug.SetMemoryLimit(-1); l > 0 && l < math.MaxInt64 {
		return l
	}
	if n, ok := procMemTotal(); ok {
		return n
	}
	return fallbackTotalMemory
}

// procMemTotal reads MemTotal from /proc/meminfo (Linux).
func procMemTotal() (int64, bool) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, false
	}
	return parseMemTotal(b)
}

// parseMemTotal finds "MemTotal: N kB" in the text of /proc/meminfo.
func parseMemTotal(b []byte) (int64, bool) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) != 3 || string(f[0]) != "MemTotal:" || string(f[2]) != "kB" {
			continue
		}
		n, err := strconv.ParseInt(string(f[1]), 10, 64)
		if err != nil || n <= 0 || n > math.MaxInt64/1024 {
			return 0, false
		}
		return n * 1024, true
	}
	return 0, false
}
