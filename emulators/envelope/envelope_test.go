package envelope_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hsmlab/hsmlab/emulators/envelope"
	"github.com/hsmlab/hsmlab/emulators/envelope/envelopetest"
	"github.com/hsmlab/hsmlab/emulators/keyclient"
	"github.com/hsmlab/hsmlab/emulators/keyclient/keyclienttest"
	"github.com/hsmlab/hsmlab/lab/clock"
)

func TestSealOpen(t *testing.T) {
	d, err := envelope.NewDEK(nil)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := d.Seal([]byte("hello"), []byte("row/a"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ct) != 5+envelope.Overhead || bytes.Contains(ct, []byte("hello")) {
		t.Fatalf("sealed value looks wrong: %d bytes", len(ct))
	}
	pt, err := d.Open(ct, []byte("row/a"))
	if err != nil || string(pt) != "hello" {
		t.Fatalf("open = %q, %v", pt, err)
	}
	if _, err := d.Open(ct, []byte("row/b")); !errors.Is(err, envelope.ErrDecrypt) {
		t.Fatalf("open with other aad: %v, want ErrDecrypt", err)
	}
	blk, err := d.SealBlock(7, make([]byte, 512), []byte("disk1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.OpenBlock(7, blk, []byte("disk1")); err != nil {
		t.Fatalf("open block: %v", err)
	}
	if _, err := d.OpenBlock(8, blk, []byte("disk1")); !errors.Is(err, envelope.ErrDecrypt) {
		t.Fatalf("block moved to another index opened: %v", err)
	}
	other, _ := envelope.NewDEK(nil)
	if _, err := other.Open(ct, []byte("row/a")); !errors.Is(err, envelope.ErrDecrypt) {
		t.Fatalf("open with another DEK: %v", err)
	}
	d.Zero()
	d.Zero()
	if _, err := d.Seal(nil, nil); !errors.Is(err, envelope.ErrZeroed) {
		t.Fatalf("seal after zero: %v", err)
	}
}

func TestDEKNeverPrints(t *testing.T) {
	reg := envelope.NewRegistry()
	d, err := envelope.NewDEK(reg)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q"} {
		out = append(out, fmt.Sprintf(verb, d))
	}
	out = append(out, fmt.Sprint(struct{ K *envelope.DEK }{d}))
	if got := envelope.ScanBytes("fmt", []byte(strings.Join(out, "\n")), reg); len(got) != 0 {
		t.Fatalf("DEK leaked through fmt: %v", got)
	}
	if _, err := json.Marshal(struct{ K *envelope.DEK }{d}); err == nil {
		t.Fatal("json.Marshal of a DEK succeeded")
	}
}

func TestWrapUnwrap(t *testing.T) {
	ctx := context.Background()
	store := keyclienttest.NewStore(clock.NewVirtual(clock.Epoch))
	v1 := store.MustCreateKey("cmk")
	kc := store.Client("sql")
	reg := envelope.NewRegistry()
	d, _ := envelope.NewDEK(reg)
	w, err := envelope.Wrap(ctx, kc, "cmk", "", d)
	if err != nil {
		t.Fatal(err)
	}
	if w.KeyVersion != v1 || w.Alg != keyclient.RSAOAEP256 || len(w.Value) != 256 {
		t.Fatalf("wrapped = %s %s %d bytes", w.KeyVersion, w.Alg, len(w.Value))
	}
	got, err := envelope.Unwrap(ctx, kc, w, reg)
	if err != nil || !got.Equal(d) {
		t.Fatalf("unwrap: %v equal=%v", err, got.Equal(d))
	}
	if reg.Len() != 1 {
		t.Fatalf("registry holds %d DEKs, want 1", reg.Len())
	}
	store.SetEnabled("cmk", v1, false)
	_, err = envelope.Unwrap(ctx, kc, w, reg)
	if keyclient.Class(err) != keyclient.ErrDenied {
		t.Fatalf("unwrap with disabled key: %v, want denied", err)
	}
	w.Value[0] ^= 1
	store.SetEnabled("cmk", v1, true)
	if _, err := envelope.Unwrap(ctx, kc, w, reg); keyclient.Class(err) != keyclient.ErrInvalid {
		t.Fatalf("unwrap of a corrupt value: %v, want invalid", err)
	}
}

// TestScanDirCatchesPlantedDEK shows the plaintext-DEK check working: a DEK
// of the run planted in a file, in each encoding, is found; wrapped and
// sealed data is not.
func TestScanDirCatchesPlantedDEK(t *testing.T) {
	reg := envelope.NewRegistry()
	d, _ := envelope.NewDEK(reg)
	planted := make([]byte, envelope.DEKSize)
	for i := range planted {
		planted[i] = byte(i*37 + 11)
	}
	reg.Add(planted)
	dir := t.TempDir()
	write := func(name string, data []byte) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sealed, _ := d.Seal(bytes.Repeat([]byte("data"), 1000), nil)
	write("clean/sealed.bin", sealed)
	write("clean/empty", nil)

	big := make([]byte, 3<<20) // spans chunk boundaries
	copy(big[(1<<20)-5:], planted)
	cases := map[string][]byte{
		"raw.bin":      append(append([]byte("prefix"), planted...), "suffix"...),
		"hex.txt":      []byte("dek=" + hex.EncodeToString(planted)),
		"HEX.txt":      []byte(strings.ToUpper(hex.EncodeToString(planted))),
		"b64.json":     []byte(`{"dek":"` + base64.StdEncoding.EncodeToString(planted) + `"}`),
		"b64url.txt":   []byte(base64.RawURLEncoding.EncodeToString(planted)),
		"b64-off1.txt": []byte(base64.StdEncoding.EncodeToString(append([]byte{0xAA}, planted...))),
		"b64-off2.txt": []byte(base64.StdEncoding.EncodeToString(append([]byte{0xAA, 0xBB, 0xCC, 0xDD}, planted...))),
		"nested/x/big": big,
	}
	for name, data := range cases {
		write("dirty/"+name, data)
	}
	found, err := envelope.ScanDir(filepath.Join(dir, "clean"), reg)
	if err != nil || len(found) != 0 {
		t.Fatalf("clean dir: %v %v", found, err)
	}
	found, err = envelope.ScanDir(filepath.Join(dir, "dirty"), reg)
	if err != nil {
		t.Fatal(err)
	}
	hit := map[string]bool{}
	for _, f := range found {
		if f.DEK != 2 {
			t.Errorf("finding names DEK #%d, want #2: %v", f.DEK, f)
		}
		if strings.Contains(f.String(), hex.EncodeToString(planted)) {
			t.Errorf("finding leaks the DEK: %v", f)
		}
		hit[filepath.Base(f.Path)] = true
	}
	for name := range cases {
		if !hit[filepath.Base(name)] {
			t.Errorf("planted DEK in %s not found (findings %v)", name, found)
		}
	}
	for _, f := range found {
		if filepath.Base(f.Path) == "big" && f.Offset != (1<<20)-5 {
			t.Errorf("big: offset %d, want %d", f.Offset, (1<<20)-5)
		}
	}
	if _, err := envelope.ScanDir(filepath.Join(dir, "missing"), reg); err == nil {
		t.Error("scan of a missing dir succeeded")
	}
}

// TestGuardFailsOnPlantedDEK runs Guard inside a sub-test that plants a DEK
// and checks that the sub-test failed.
func TestGuardFailsOnPlantedDEK(t *testing.T) {
	reg := envelope.NewRegistry()
	dir := t.TempDir()
	ft := &fakeT{TB: t}
	func() {
		defer ft.runCleanups()
		envelopetest.Guard(ft, reg, dir)
		d := make([]byte, envelope.DEKSize)
		d[0] = 1
		reg.Add(d)
		if err := os.WriteFile(filepath.Join(dir, "leak"), []byte(hex.EncodeToString(d)), 0o600); err != nil {
			t.Fatal(err)
		}
	}()
	if len(ft.errs) != 1 || !strings.Contains(ft.errs[0], "plaintext DEK #1 (hex)") {
		t.Fatalf("guard reported %q", ft.errs)
	}
}

type fakeT struct {
	testing.TB
	cleanups []func()
	errs     []string
}

func (f *fakeT) Helper()                   {}
func (f *fakeT) Cleanup(fn func())         { f.cleanups = append(f.cleanups, fn) }
func (f *fakeT) Errorf(s string, a ...any) { f.errs = append(f.errs, fmt.Sprintf(s, a...)) }
func (f *fakeT) runCleanups() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}
