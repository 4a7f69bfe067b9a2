package yamux

import (
	"math/bits"
	"sync"
)

// Chunks of received data come from pools of a few size classes, so a
// stream receiving small messages holds small chunks and a bulk transfer
// reads large frames in few calls.
const (
	minChunkShift = 10 // 1 KiB
	maxChunkShift = 16 // 64 KiB
	chunkStep     = 2  // classes 1, 4, 16 and 64 KiB
	numChunkPools = (maxChunkShift-minChunkShift)/chunkStep + 1
)

var chunkPools [numChunkPools]sync.Pool

// chunkClass returns the pool index for a chunk meant to hold n bytes: the
// smallest class that holds them, or the largest.
func chunkClass(n int) int {
	if n <= 1<<minChunkShift {
		return 0
	}
	shift := bits.Len(uint(n - 1)) // 2^shift >= n
	class := (shift - minChunkShift + chunkStep - 1) / chunkStep
	return min(class, numChunkPools-1)
}

// getChunk returns an empty chunk with room for n bytes, or for the
// largest class if n is larger.
func getChunk(n int) *[]byte {
	class := chunkClass(n)
	if b, ok := chunkPools[class].Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, 1<<(minChunkShift+class*chunkStep))
	return &b
}

func putChunk(b *[]byte) {
	class := chunkClass(cap(*b))
	if cap(*b) != 1<<(minChunkShift+class*chunkStep) {
		return
	}
	*b = (*b)[:0]
	chunkPools[class].Put(b)
}

// recvBuffer is a stream's received, unread data: a list of pooled chunks.
// The read loop writes a frame's payload straight into the spare capacity
// of the last chunk (reserve, read without the stream's lock, commit), while
// readers copy from the front.
type recvBuffer struct {
	inline  [2]*[]byte // backs chunks while it is short: no allocation
	chunks  []*[]byte  // chunks[head:] hold data; each one's len is its end
	head    int
	off     int  // read offset in chunks[head]
	size    int  // unread bytes
	filling bool // the read loop is writing past the last chunk's len
}

// reserve returns room for up to n bytes at the end of the buffer. The
// caller sets filling, reads into it, then calls commit.
func (b *recvBuffer) reserve(n int) []byte {
	if b.head < len(b.chunks) {
		tail := *b.chunks[len(b.chunks)-1]
		if free := cap(tail) - len(tail); free > 0 {
			return tail[len(tail) : len(tail)+min(free, n)]
		}
	}
	if b.head > 0 && len(b.chunks) == cap(b.chunks) {
		// Reuse the array instead of growing it.
		k := copy(b.chunks, b.chunks[b.head:])
		clear(b.chunks[k:])
		b.chunks, b.head = b.chunks[:k], 0
	}
	c := getChunk(n)
	if b.chunks == nil {
		b.chunks = b.inline[:0]
	}
	b.chunks = append(b.chunks, c)
	return (*c)[:min(cap(*c), n)]
}

// commit adds the k bytes written into the room reserve returned.
func (b *recvBuffer) commit(k int) {
	tail := b.chunks[len(b.chunks)-1]
	*tail = (*tail)[:len(*tail)+k]
	b.size += k
}

// read copies unread data into p and frees drained chunks.
func (b *recvBuffer) read(p []byte) int {
	n := 0
	for n < len(p) && b.size > 0 {
		c := *b.chunks[b.head]
		k := copy(p[n:], c[b.off:])
		n += k
		b.off += k
		b.size -= k
		if b.off == len(c) {
			if b.head == len(b.chunks)-1 && b.filling {
				break // the read loop writes into it
			}
			b.dropHead()
		}
	}
	return n
}

func (b *recvBuffer) dropHead() {
	putChunk(b.chunks[b.head])
	b.chunks[b.head] = nil
	b.head++
	b.off = 0
	if b.head == len(b.chunks) {
		b.chunks, b.head = b.chunks[:0], 0
	}
}

// release drops all unread data and returns the chunks to their pools,
// except the one the read loop is filling, whose data it drops.
func (b *recvBuffer) release() {
	for b.head < len(b.chunks) {
		if b.head == len(b.chunks)-1 && b.filling {
			b.off = len(*b.chunks[b.head])
			break
		}
		b.dropHead()
	}
	b.size = 0
}
