package partition

import (
	"context"
	"crypto/sha256"
	"sync"
)

// Memo wraps a partition so that repeating an identical private-key
// operation — the same handle, algorithm and ciphertext — returns the result
// computed the first time instead of doing the RSA arithmetic again. The
// simulator uses it: its probes unwrap the same wrapped DEK thousands of
// times per modelled hour, and real RSA would dominate the run. Every
// request still goes through the wrapped partition's key checks (the key
// must exist: a deleted key is never answered from the cache), and the
// first request for each ciphertext is computed by the partition itself.
//
// At most size results are kept; when full, the cache is cleared.
func Memo(p Partition, size int) Partition {
	if size <= 0 {
		size = 4096
	}
	return &memo{Partition: p, size: size, m: map[memoKey][]byte{}}
}

type memoKey struct {
	handle string
	alg    Alg
	op     byte
	sum    [32]byte
}

type memo struct {
	Partition
	size int
	mu   sync.Mutex
	m    map[memoKey][]byte
}

func (c *memo) lookup(ctx context.Context, k memoKey) ([]byte, bool) {
	if ok, err := c.Partition.Has(ctx, k.handle); err != nil || !ok {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[k]
	if !ok {
		return nil, false
	}
	return append([]byte(nil), v...), true
}

func (c *memo) store(k memoKey, v []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.size {
		clear(c.m)
	}
	c.m[k] = append([]byte(nil), v...)
}

// Unwrap returns the memoized result of an identical earlier unwrap.
func (c *memo) Unwrap(ctx context.Context, handle string, alg Alg, ciphertext []byte) ([]byte, error) {
	if err := c.Partition.Health(ctx); err != nil {
		return c.Partition.Unwrap(ctx, handle, alg, ciphertext)
	}
	k := memoKey{handle: handle, alg: alg, op: 'u', sum: sha256.Sum256(ciphertext)}
	if v, ok := c.lookup(ctx, k); ok {
		return v, nil
	}
	v, err := c.Partition.Unwrap(ctx, handle, alg, ciphertext)
	if err == nil {
		c.store(k, v)
	}
	return v, err
}

// Delete drops the key's memoized results with the key.
func (c *memo) Delete(ctx context.Context, handle string) error {
	c.mu.Lock()
	for k := range c.m {
		if k.handle == handle {
			delete(c.m, k)
		}
	}
	c.mu.Unlock()
	return c.Partition.Delete(ctx, handle)
}
