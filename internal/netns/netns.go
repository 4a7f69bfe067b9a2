// Package netns runs test code in a network namespace of its own, for
// tests that must bind wildcard addresses (/ip4/0.0.0.0, /ip6/::) without
// exposing a listener on the machine's interfaces: the namespace has only
// a loopback interface, and it disappears with the thread that made it.
//
// It needs CAP_SYS_ADMIN (root), as CI has; elsewhere Run fails the test
// and says why.
//
// It may import the standard library and golang.org/x/sys.
package netns

import (
	"fmt"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// Run calls f on a goroutine locked to an OS thread that has been moved
// to a fresh network namespace with its loopback interface up. Sockets f
// creates live in that namespace; goroutines f starts run on other
// threads but may use those sockets. f reports failures with t.Error (a
// t.Fatal ends f, and Run returns). The thread is discarded when f
// returns, so the namespace goes with its last socket.
func Run(t testing.TB, f func()) {
	t.Helper()
	done := make(chan struct{})
	var setupErr error
	go func() {
		defer close(done)
		runtime.LockOSThread()
		// No UnlockOSThread: the thread ends with this goroutine and takes
		// the namespace with it.
		if err := enter(); err != nil {
			setupErr = err
			return
		}
		f()
	}()
	<-done
	if setupErr != nil {
		t.Fatalf("netns: %v (this test needs root to make a network namespace)", setupErr)
	}
}

// enter moves the calling thread to a new network namespace and brings
// its loopback interface up.
func enter() error {
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("unshare(CLONE_NEWNET): %w", err)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("reading the flags of lo: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bringing lo up: %w", err)
	}
	return nil
}
