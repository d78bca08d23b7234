package partition_test

import (
	"bytes"
	"crypto/aes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/hsmlab/hsmlab/emulators/partition"
)

func unhex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// RFC 3394 section 4.
func TestWrap3394Vectors(t *testing.T) {
	tests := []struct {
		name, kek, key, wrapped string
	}{
		{"4.1 128-bit key with 128-bit KEK", "000102030405060708090A0B0C0D0E0F",
			"00112233445566778899AABBCCDDEEFF",
			"1FA68B0A8112B447 AEF34BD8FB5A7B82 9D3E862371D2CFE5"},
		{"4.2 128-bit key with 192-bit KEK", "000102030405060708090A0B0C0D0E0F1011121314151617",
			"00112233445566778899AABBCCDDEEFF",
			"96778B25AE6CA435 F92B5B97C050AED2 468AB8A17AD84E5D"},
		{"4.3 128-bit key with 256-bit KEK", "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
			"00112233445566778899AABBCCDDEEFF",
			"64E8C3F9CE0F5BA2 63E9777905818A2A 93C8191E7D6E8AE7"},
		{"4.4 192-bit key with 192-bit KEK", "000102030405060708090A0B0C0D0E0F1011121314151617",
			"00112233445566778899AABBCCDDEEFF0001020304050607",
			"031D33264E15D332 68F24EC260743EDC E1C6C7DDEE725A93 6BA814915C6762D2"},
		{"4.5 192-bit key with 256-bit KEK", "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
			"00112233445566778899AABBCCDDEEFF0001020304050607",
			"A8F9BC1612C68B3F F6E6F4FBE30E71E4 769C8B80A32CB895 8CD5D17D6B254DA1"},
		{"4.6 256-bit key with 256-bit KEK", "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
			"00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F",
			"28C9F404C4B810F4 CBCCB35CFB87F826 3F5786E2D80ED326 CBC7F0E71A99F43B FB988B9B7A02DD21"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kek, key, want := unhex(t, tt.kek), unhex(t, tt.key), unhex(t, tt.wrapped)
			got, err := partition.Wrap3394(kek, key)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("Wrap3394 = %X, want %X", got, want)
			}
			back, err := partition.Unwrap3394(kek, want)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(back, key) {
				t.Fatalf("Unwrap3394 = %X, want %X", back, key)
			}
			bad := bytes.Clone(want)
			bad[len(bad)-1] ^= 1
			if _, err := partition.Unwrap3394(kek, bad); !errors.Is(err, partition.ErrDecrypt) {
				t.Fatalf("Unwrap3394(tampered) error = %v, want ErrDecrypt", err)
			}
		})
	}
}

// RFC 5649 section 6.
func TestWrapPadVectors(t *testing.T) {
	kek := "5840df6e29b02af1 ab493b705bf16ea1 ae8338f4dcc176a8"
	tests := []struct {
		name, key, wrapped string
	}{
		{"20-octet key", "c37b7e6492584340 bed1220780894115 5068f738",
			"138bdeaa9b8fa7fc 61f97742e72248ee 5ae6ae5360d1ae6a 5f54f373fa543b6a"},
		{"7-octet key", "466f7250617369", "afbeb0f07dfbf541 9200f2ccb50bb24f"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kek, key, want := unhex(t, kek), unhex(t, tt.key), unhex(t, tt.wrapped)
			got, err := partition.WrapPad(kek, key)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("WrapPad = %x, want %x", got, want)
			}
			back, err := partition.UnwrapPad(kek, want)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(back, key) {
				t.Fatalf("UnwrapPad = %x, want %x", back, key)
			}
		})
	}
}

func TestWrapPadRoundTrip(t *testing.T) {
	for _, kekLen := range []int{16, 24, 32} {
		kek := make([]byte, kekLen)
		rand.Read(kek)
		other := make([]byte, kekLen)
		rand.Read(other)
		for n := 1; n <= 70; n++ {
			pt := make([]byte, n)
			rand.Read(pt)
			w, err := partition.WrapPad(kek, pt)
			if err != nil {
				t.Fatalf("kek %d, len %d: %v", kekLen, n, err)
			}
			if want := (n+7)/8*8 + 8; len(w) != want {
				t.Fatalf("kek %d, len %d: wrapped %d bytes, want %d", kekLen, n, len(w), want)
			}
			got, err := partition.UnwrapPad(kek, w)
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("kek %d, len %d: UnwrapPad = %x, %v; want %x", kekLen, n, got, err, pt)
			}
			if _, err := partition.UnwrapPad(other, w); !errors.Is(err, partition.ErrDecrypt) {
				t.Fatalf("kek %d, len %d: UnwrapPad(other kek) error = %v, want ErrDecrypt", kekLen, n, err)
			}
			for i := range w {
				bad := bytes.Clone(w)
				bad[i] ^= 0x80
				if _, err := partition.UnwrapPad(kek, bad); !errors.Is(err, partition.ErrDecrypt) {
					t.Fatalf("kek %d, len %d: tampered byte %d: error = %v, want ErrDecrypt", kekLen, n, i, err)
				}
			}
		}
	}
}

// A forged wrap with a bad length indicator or non-zero padding must fail
// even though the AIV prefix is right: build one with the raw RFC 3394
// primitive under the RFC 5649 AIV.
func TestUnwrapPadRejectsBadLengthAndPadding(t *testing.T) {
	kek := make([]byte, 32)
	rand.Read(kek)
	tests := []struct {
		name string
		mli  uint32
		body []byte
	}{
		{"mli too large", 17, make([]byte, 16)},
		{"mli too small", 8, make([]byte, 16)},
		{"mli zero", 0, make([]byte, 16)},
		{"non-zero padding", 9, append(make([]byte, 15), 1)},
		{"valid control", 9, make([]byte, 16)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := forgeKWP(t, kek, tt.mli, tt.body)
			_, err := partition.UnwrapPad(kek, w)
			if tt.name == "valid control" {
				if err != nil {
					t.Fatalf("UnwrapPad(control) = %v", err)
				}
				return
			}
			if !errors.Is(err, partition.ErrDecrypt) {
				t.Fatalf("UnwrapPad error = %v, want ErrDecrypt", err)
			}
		})
	}
}

func TestKeyWrapBadInput(t *testing.T) {
	kek := make([]byte, 32)
	tests := []struct {
		name string
		fn   func() error
	}{
		{"Wrap3394 short", func() error { _, err := partition.Wrap3394(kek, make([]byte, 8)); return err }},
		{"Wrap3394 odd", func() error { _, err := partition.Wrap3394(kek, make([]byte, 17)); return err }},
		{"Wrap3394 bad kek", func() error { _, err := partition.Wrap3394(kek[:15], make([]byte, 16)); return err }},
		{"Unwrap3394 short", func() error { _, err := partition.Unwrap3394(kek, make([]byte, 16)); return err }},
		{"WrapPad empty", func() error { _, err := partition.WrapPad(kek, nil); return err }},
		{"WrapPad bad kek", func() error { _, err := partition.WrapPad(kek[:20], []byte{1}); return err }},
		{"UnwrapPad short", func() error { _, err := partition.UnwrapPad(kek, make([]byte, 8)); return err }},
		{"UnwrapPad odd", func() error { _, err := partition.UnwrapPad(kek, make([]byte, 20)); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.fn(); !errors.Is(err, partition.ErrBadInput) {
				t.Fatalf("error = %v, want ErrBadInput", err)
			}
		})
	}
}

func FuzzUnwrapPad(f *testing.F) {
	kek := make([]byte, 32)
	w, _ := partition.WrapPad(kek, []byte("seed material"))
	f.Add(w)
	f.Add(make([]byte, 16))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, c []byte) {
		pt, err := partition.UnwrapPad(kek, c)
		if err == nil {
			again, err := partition.WrapPad(kek, pt)
			if err != nil || !bytes.Equal(again, c) {
				t.Fatalf("UnwrapPad accepted %x but WrapPad(%x) = %x, %v", c, pt, again, err)
			}
		}
	})
}

func FuzzUnwrap3394(f *testing.F) {
	kek := make([]byte, 16)
	w, _ := partition.Wrap3394(kek, make([]byte, 24))
	f.Add(w)
	f.Add(make([]byte, 24))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, c []byte) {
		pt, err := partition.Unwrap3394(kek, c)
		if err == nil {
			again, err := partition.Wrap3394(kek, pt)
			if err != nil || !bytes.Equal(again, c) {
				t.Fatalf("Unwrap3394 accepted %x but Wrap3394(%x) = %x, %v", c, pt, again, err)
			}
		}
	})
}

// forgeKWP wraps body (a multiple of 8 bytes, at least 16) with RFC 3394's
// process W under the RFC 5649 initial value A65959A6||mli, written here
// independently of the package.
func forgeKWP(tb testing.TB, kek []byte, mli uint32, body []byte) []byte {
	tb.Helper()
	b, err := aes.NewCipher(kek)
	if err != nil {
		tb.Fatal(err)
	}
	n := len(body) / 8
	r := bytes.Clone(body)
	var a [8]byte
	copy(a[:], []byte{0xA6, 0x59, 0x59, 0xA6})
	binary.BigEndian.PutUint32(a[4:], mli)
	var blk [16]byte
	for j := 0; j < 6; j++ {
		for i := 0; i < n; i++ {
			copy(blk[:8], a[:])
			copy(blk[8:], r[8*i:8*i+8])
			b.Encrypt(blk[:], blk[:])
			t := uint64(n*j + i + 1)
			binary.BigEndian.PutUint64(a[:], binary.BigEndian.Uint64(blk[:8])^t)
			copy(r[8*i:], blk[8:])
		}
	}
	return append(a[:], r...)
}
