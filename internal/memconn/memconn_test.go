package memconn

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestPipelinedWritesDoNotBlock(t *testing.T) {
	a, b := Pair(0)
	defer a.Close()
	defer b.Close()
	// Both ends write before reading: this deadlocks over net.Pipe.
	if _, err := a.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(a, got); err != nil || string(got) != "pong" {
		t.Fatalf("a read %q, %v", got, err)
	}
	if _, err := io.ReadFull(b, got); err != nil || string(got) != "ping" {
		t.Fatalf("b read %q, %v", got, err)
	}
}

func TestBufferBoundsWriter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := Pair(16)
		defer a.Close()
		defer b.Close()
		a.SetWriteDeadline(time.Now().Add(time.Second))
		start := time.Now()
		n, err := a.Write(make([]byte, 100))
		if n != 16 || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Write = %d, %v; want 16 and a deadline error", n, err)
		}
		if d := time.Since(start); d != time.Second {
			t.Errorf("deadline hit after %v; want 1s", d)
		}
	})
}

func TestCloseAndDeadlines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := Pair(0)
		b.SetReadDeadline(time.Now().Add(2 * time.Second))
		start := time.Now()
		if _, err := b.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read = %v; want deadline", err)
		}
		if time.Since(start) != 2*time.Second {
			t.Errorf("read deadline after %v", time.Since(start))
		}
		b.SetReadDeadline(time.Time{})
		a.Write([]byte("bye"))
		a.Close()
		got, err := io.ReadAll(b)
		if err != nil || string(got) != "bye" {
			t.Fatalf("ReadAll = %q, %v; want bye then EOF", got, err)
		}
		if _, err := b.Write([]byte("x")); err == nil {
			t.Error("write to a closed peer succeeded")
		}
		b.Close()
		if _, err := b.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
			t.Errorf("read after own close = %v", err)
		}
	})
}
