package perf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/p2pnet/p2pnet/network"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const MiB = 1 << 20

// pair returns a client host and a server host running the perf service.
func pair(t *testing.T) (client, server *fakeHost, svc *Service) {
	client, server = newFakeHost(t), newFakeHost(t)
	link(client, server)
	svc = NewService(server)
	t.Cleanup(func() { svc.Close() })
	return client, server, svc
}

func TestRunCounts(t *testing.T) {
	for _, tc := range []struct{ up, down uint64 }{
		{0, 0},
		{1 * MiB, 0},
		{0, 1 * MiB},
		{3 * MiB, 5 * MiB},
		{BufferSize - HeaderSize, 1},
		{BufferSize - HeaderSize + 1, BufferSize + 1},
	} {
		t.Run(fmt.Sprintf("up=%d,down=%d", tc.up, tc.down), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				client, server, _ := pair(t)
				res, err := Run(t.Context(), client, server.ID(), tc.up, tc.down, nil)
				if err != nil {
					t.Fatal(err)
				}
				if res.Uploaded != tc.up || res.Downloaded != tc.down {
					t.Fatalf("result %+v, want %d up and %d down", res, tc.up, tc.down)
				}
				synctest.Wait()
				in := server.Inbound()[0]
				if got := in.BytesRead(); got != HeaderSize+tc.up {
					t.Errorf("server read %d bytes, want %d", got, HeaderSize+tc.up)
				}
				if got := in.BytesWritten(); got != tc.down {
					t.Errorf("server wrote %d bytes, want %d", got, tc.down)
				}
				if svc := in.MemScope().Service(); svc != ServiceName {
					t.Errorf("server stream service = %q", svc)
				}
				client.CheckScopes()
				server.CheckScopes()
			})
		})
	}
}

func TestReadHeader(t *testing.T) {
	for _, tc := range []struct {
		in   []byte
		want uint64
		err  error
	}{
		{[]byte{0, 0, 0, 0, 0, 0, 0, 0}, 0, nil},
		{[]byte{0, 0, 0, 0, 0, 0, 1, 2}, 0x102, nil},
		{[]byte{1, 2, 3, 4, 5, 6, 7, 8, 9}, 0x0102030405060708, nil},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, math.MaxUint64, nil},
		{nil, 0, ErrShortHeader},
		{[]byte{0, 0, 0, 0, 0, 0, 1}, 0, ErrShortHeader},
	} {
		got, err := ReadHeader(bytes.NewReader(tc.in))
		if got != tc.want || !errors.Is(err, tc.err) {
			t.Errorf("ReadHeader(%x) = %d, %v; want %d, %v", tc.in, got, err, tc.want, tc.err)
		}
	}
	if got := AppendHeader([]byte("x"), 0x0102030405060708); !bytes.Equal(got, []byte("x\x01\x02\x03\x04\x05\x06\x07\x08")) {
		t.Errorf("AppendHeader = %x", got)
	}
	broken := errors.New("broken")
	if _, err := ReadHeader(io.MultiReader(bytes.NewReader([]byte{1}), errReader{broken})); !errors.Is(err, broken) || errors.Is(err, ErrShortHeader) {
		t.Errorf("ReadHeader over a failing reader: %v", err)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func FuzzReadHeader(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 1})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := ReadHeader(bytes.NewReader(b))
		if len(b) < HeaderSize {
			if !errors.Is(err, ErrShortHeader) {
				t.Fatalf("ReadHeader(%x) = %d, %v; want ErrShortHeader", b, got, err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if back := AppendHeader(nil, got); !bytes.Equal(back, b[:HeaderSize]) {
			t.Fatalf("ReadHeader(%x) = %d, which encodes as %x", b, got, back)
		}
	})
}

// rawStream opens a perf stream to the server.
func rawStream(t *testing.T, client, server *fakeHost) network.Stream {
	t.Helper()
	s, err := client.NewStream(t.Context(), server.ID(), ID)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestServerResetsShortHeader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, server, svc := pair(t)
		s := rawStream(t, client, server)
		defer s.Close()
		s.Write([]byte{0, 0, 1})
		s.CloseWrite()
		if _, err := io.ReadAll(s); !errors.Is(err, network.ErrReset) {
			t.Fatalf("read error = %v, want ErrReset", err)
		}
		synctest.Wait()
		server.CheckScopes()
		svc.mu.Lock()
		defer svc.mu.Unlock()
		if len(svc.streams) != 0 {
			t.Fatalf("%d streams still served", len(svc.streams))
		}
	})
}

func TestServerTimesOutIdleStream(t *testing.T) {
	for _, tc := range []struct {
		name string
		send []byte
	}{
		{"no header", nil},
		{"partial header", []byte{0, 0}},
		{"header, then upload stalls", []byte{0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				client, server, _ := pair(t)
				s := rawStream(t, client, server)
				defer s.Close()
				start := time.Now()
				if lz, ok := s.(*lazyStream); ok {
					lz.Flush()
				}
				if len(tc.send) > 0 {
					s.Write(tc.send)
				}
				if _, err := s.Read(make([]byte, 1)); !errors.Is(err, network.ErrReset) {
					t.Fatalf("read error = %v, want ErrReset", err)
				}
				if d := time.Since(start); d != IdleTimeout {
					t.Fatalf("reset after %v, want %v", d, IdleTimeout)
				}
				synctest.Wait()
				server.CheckScopes()
			})
		})
	}
}

func TestServerTimesOutStalledDownload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, server, _ := pair(t)
		s := rawStream(t, client, server)
		defer s.Close()
		s.Write(AppendHeader(nil, 10*MiB))
		s.CloseWrite()
		// Read a little, then stop: the server's writes fill the pipe.
		if _, err := io.ReadFull(s, make([]byte, 1000)); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		synctest.Wait()
		in := server.Inbound()[0]
		time.Sleep(IdleTimeout - time.Nanosecond)
		synctest.Wait()
		if in.IsReset() {
			t.Fatal("stream reset before the idle timeout")
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if !in.IsReset() {
			t.Fatalf("stream not reset %v after the server stalled", time.Since(start))
		}
		server.CheckScopes()
	})
}

func TestRunProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, server, _ := pair(t)
		// Each server write of BufferSize bytes takes 250ms: 1 MiB takes
		// 16 writes, 4 s.
		server.SetWriteDelay(250 * time.Millisecond)
		var got []Progress
		res, err := Run(t.Context(), client, server.ID(), 2*MiB, 1*MiB, func(p Progress) { got = append(got, p) })
		if err != nil {
			t.Fatal(err)
		}
		if res.UploadTime != 0 || res.DownloadTime != 4*time.Second {
			t.Fatalf("times: upload %v, download %v; want 0 and 4s", res.UploadTime, res.DownloadTime)
		}
		if bps := res.DownloadBitsPerSecond(); bps != MiB*8/4 {
			t.Fatalf("download throughput %v bits/s, want %v", bps, MiB*8/4)
		}
		if bps := res.UploadBitsPerSecond(); bps != 0 {
			t.Fatalf("upload throughput %v bits/s in no time, want 0", bps)
		}
		// A tick each second while the download runs: at 1 s, 2 s and
		// 3 s, four writes of 64 KiB have arrived each second. At 4 s the
		// transfer is over.
		want := []Progress{
			{2 * MiB, 4 * BufferSize, 1 * time.Second},
			{2 * MiB, 8 * BufferSize, 2 * time.Second},
			{2 * MiB, 12 * BufferSize, 3 * time.Second},
			{2 * MiB, 16 * BufferSize, 4 * time.Second},
		}
		if !slices.Equal(got, want) {
			t.Fatalf("progress:\n got %v\nwant %v", got, want)
		}
	})
}

func TestRunCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, server, _ := pair(t)
		server.SetWriteDelay(100 * time.Millisecond)
		ctx, cancel := context.WithTimeout(t.Context(), 1050*time.Millisecond)
		defer cancel()
		// The spec's timed download: ask for everything, stop in time.
		res, err := Run(ctx, client, server.ID(), 0, math.MaxUint64, nil)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Run error = %v, want DeadlineExceeded", err)
		}
		if res.Downloaded != 10*BufferSize {
			t.Fatalf("downloaded %d bytes in 1.05 s, want %d", res.Downloaded, 10*BufferSize)
		}
		time.Sleep(server.WriteDelay()) // the server's write in progress fails
		synctest.Wait()
		client.CheckScopes()
		server.CheckScopes()
	})
}

func TestRunRejectsWrongCount(t *testing.T) {
	for _, tc := range []struct {
		name string
		send uint64
	}{{"short", 99}, {"long", 101}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				client, server := newFakeHost(t), newFakeHost(t)
				link(client, server)
				server.SetStreamHandler(ID, func(s network.Stream) {
					defer s.Close()
					if _, err := ReadHeader(s); err != nil {
						return
					}
					io.Copy(io.Discard, s)
					s.Write(make([]byte, tc.send))
				})
				_, err := Run(t.Context(), client, server.ID(), 0, 100, nil)
				if !errors.Is(err, ErrDownloadMismatch) {
					t.Fatalf("Run error = %v, want ErrDownloadMismatch", err)
				}
			})
		})
	}
}

func TestRunErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, server := newFakeHost(t), newFakeHost(t)
		if _, err := Run(t.Context(), client, server.ID(), 1, 1, nil); !errors.Is(err, network.ErrNoConn) {
			t.Fatalf("Run to an unknown peer: %v", err)
		}
		link(client, server)
		if _, err := Run(t.Context(), client, server.ID(), 1, 1, nil); err == nil {
			t.Fatal("Run against a peer without perf succeeded")
		}
		client.SetMemLimit(BufferSize - 1)
		if _, err := Run(t.Context(), client, server.ID(), 1, 1, nil); !errors.Is(err, network.ErrResourceLimitExceeded) {
			t.Fatalf("Run without memory: %v", err)
		}
	})
}

func TestServerMemoryRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, server, _ := pair(t)
		server.SetMemLimit(BufferSize - 1)
		if _, err := Run(t.Context(), client, server.ID(), 10, 10, nil); !errors.Is(err, network.ErrReset) {
			t.Fatalf("Run error = %v, want ErrReset", err)
		}
		synctest.Wait()
		server.CheckScopes()
	})
}

func TestCloseWaitsForHandlers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, server, svc := pair(t)
		s := rawStream(t, client, server)
		defer s.Close()
		s.Write(AppendHeader(nil, 1))
		synctest.Wait() // the handler now waits for the end of the upload
		start := time.Now()
		svc.Close()
		if d := time.Since(start); d != 0 {
			t.Fatalf("Close took %v", d)
		}
		svc.mu.Lock()
		n := len(svc.streams)
		svc.mu.Unlock()
		if n != 0 {
			t.Fatalf("%d streams still served after Close", n)
		}
		if _, err := s.Read(make([]byte, 1)); !errors.Is(err, network.ErrReset) {
			t.Fatalf("read after Close: %v, want ErrReset", err)
		}
		if _, err := Run(t.Context(), client, server.ID(), 1, 1, nil); err == nil {
			t.Fatal("Run succeeded after Close")
		}
		svc.Close()
	})
}

func BenchmarkRun(b *testing.B) {
	client, server := newFakeHost(b), newFakeHost(b)
	link(client, server)
	svc := NewService(server)
	defer svc.Close()
	const size = 16 * MiB
	b.SetBytes(2 * size)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Run(context.Background(), client, server.ID(), size, size, nil); err != nil {
			b.Fatal(err)
		}
	}
	server.Wait()
}
