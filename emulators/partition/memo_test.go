package partition_test

import (
	"context"
	"errors"
	"testing"

	"github.com/hsmlab/hsmlab/emulators/partition"
)

func TestMemoAnswersRepeatsAndForgetsDeletedKeys(t *testing.T) {
	ctx := context.Background()
	inner := partition.NewMemory("m")
	if err := inner.InstallDomainKey(ctx, make([]byte, 32)); err != nil {
		t.Fatal(err)
	}
	p := partition.Memo(inner, 2)
	if _, err := p.Generate(ctx, "k/1", partition.KeySpec{Type: partition.RSA, Bits: 2048}); err != nil {
		t.Fatal(err)
	}
	dek := []byte("0123456789abcdef0123456789abcdef")
	ct, err := p.Wrap(ctx, "k/1", partition.RSAOAEP256, dek)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		got, err := p.Unwrap(ctx, "k/1", partition.RSAOAEP256, ct)
		if err != nil || string(got) != string(dek) {
			t.Fatalf("unwrap: %q %v", got, err)
		}
		got[0] ^= 1 // callers own the returned slice
	}
	bad := append([]byte(nil), ct...)
	bad[3] ^= 1
	if _, err := p.Unwrap(ctx, "k/1", partition.RSAOAEP256, bad); !errors.Is(err, partition.ErrDecrypt) {
		t.Fatalf("corrupt ciphertext: %v", err)
	}
	inner.SetHealthy(false)
	if _, err := p.Unwrap(ctx, "k/1", partition.RSAOAEP256, ct); !errors.Is(err, partition.ErrUnavailable) {
		t.Fatalf("unhealthy partition answered from the cache: %v", err)
	}
	inner.SetHealthy(true)
	if err := p.Delete(ctx, "k/1"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Unwrap(ctx, "k/1", partition.RSAOAEP256, ct); !errors.Is(err, partition.ErrNoKey) {
		t.Fatalf("deleted key answered from the cache: %v", err)
	}
}
