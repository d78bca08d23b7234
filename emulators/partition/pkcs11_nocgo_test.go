//go:build !cgo

package partition_test

import (
	"errors"
	"testing"

	"github.com/hsmlab/hsmlab/emulators/partition"
)

func TestPKCS11RequiresCgo(t *testing.T) {
	mod, err := partition.OpenModule("/usr/lib/softhsm/libsofthsm2.so")
	if mod != nil || !errors.Is(err, partition.ErrPKCS11Unsupported) {
		t.Fatalf("OpenModule = %v, %v; want ErrPKCS11Unsupported", mod, err)
	}
	p, err := partition.NewPKCS11(nil, "p", "tok", "1234")
	if p != nil || !errors.Is(err, partition.ErrPKCS11Unsupported) {
		t.Fatalf("NewPKCS11 = %v, %v; want ErrPKCS11Unsupported", p, err)
	}
}
