package envelope

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Registry remembers, in memory only, every DEK generated or unwrapped
// during a run, so that ScanDir can look for them on disk afterwards. It is
// a test and scenario check, not part of any data path; a nil *Registry is
// valid and remembers nothing. It is safe for concurrent use.
type Registry struct {
	mu   sync.Mutex
	seen map[[DEKSize]byte]int
	keys [][DEKSize]byte
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{seen: map[[DEKSize]byte]int{}} }

// Add remembers key (DEKSize bytes; other sizes are ignored) as a DEK of
// this run. It copies key.
func (r *Registry) Add(key []byte) {
	if r == nil || len(key) != DEKSize {
		return
	}
	var k [DEKSize]byte
	copy(k[:], key)
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.seen[k]; ok {
		return
	}
	r.keys = append(r.keys, k)
	r.seen[k] = len(r.keys)
}

// Len returns how many distinct DEKs the registry holds.
func (r *Registry) Len() int {
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.keys)
}

// Finding is one plaintext DEK found where it must not be.
type Finding struct {
	Path     string // file path (ScanDir) or the name given to ScanBytes
	Offset   int64  // byte offset of the match
	Encoding string // "raw", "hex", "HEX", "base64", "base64url" (with alignment)
	DEK      int    // the DEK's ordinal in the registry (1-based); never the key itself
}

// String names the place and the DEK's ordinal, never the key.
func (f Finding) String() string {
	return fmt.Sprintf("%s:%d: plaintext DEK #%d (%s)", f.Path, f.Offset, f.DEK, f.Encoding)
}

// ScanDir reads every regular file under dir and reports each place where a
// DEK of reg appears in the clear: as raw bytes, as lower- or upper-case hex,
// or as standard or URL-safe base64 (padded or not, at any of the three byte
// alignments inside a longer base64 stream). A missing dir is an error; an
// empty registry finds nothing.
func ScanDir(dir string, reg *Registry) ([]Finding, error) {
	m := newMatcher(reg)
	var out []Finding
	err := filepath.WalkDir(dir, func(path string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !de.Type().IsRegular() || m == nil {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		found, err := m.scanReader(path, f)
		out = append(out, found...)
		return err
	})
	if err != nil {
		return out, fmt.Errorf("scan %s: %w", dir, err)
	}
	return out, nil
}

// ScanBytes is ScanDir for data that does not live in a directory (a blob
// downloaded from Azurite, rows read from SQL Server); name labels findings.
func ScanBytes(name string, data []byte, reg *Registry) []Finding {
	m := newMatcher(reg)
	if m == nil {
		return nil
	}
	return m.scan(name, 0, data, len(data))
}

type pattern struct {
	b   []byte
	enc string
	dek int
}

type matcher struct {
	pre    [1 << 16]bool
	byHead map[uint32][]int
	pats   []pattern
	minLen int
	maxLen int
	// data and work are read buffers reused across files.
	data, work []byte
}

func newMatcher(reg *Registry) *matcher {
	if reg == nil {
		return nil
	}
	reg.mu.Lock()
	keys := append([][DEKSize]byte(nil), reg.keys...)
	reg.mu.Unlock()
	if len(keys) == 0 {
		return nil
	}
	m := &matcher{byHead: map[uint32][]int{}, minLen: 1 << 30}
	seen := map[string]bool{}
	add := func(b []byte, enc string, dek int) {
		if seen[string(b)] {
			return
		}
		seen[string(b)] = true
		m.pats = append(m.pats, pattern{b: b, enc: enc, dek: dek})
		m.minLen = min(m.minLen, len(b))
		m.maxLen = max(m.maxLen, len(b))
	}
	for i, k := range keys {
		n := i + 1
		add(append([]byte(nil), k[:]...), "raw", n)
		add([]byte(hex.EncodeToString(k[:])), "hex", n)
		add([]byte(strings.ToUpper(hex.EncodeToString(k[:]))), "HEX", n)
		for align := 0; align < 3; align++ {
			add(base64Core(base64.RawStdEncoding, k[:], align), fmt.Sprintf("base64/%d", align), n)
			add(base64Core(base64.RawURLEncoding, k[:], align), fmt.Sprintf("base64url/%d", align), n)
		}
	}
	for i, p := range m.pats {
		h := binary.LittleEndian.Uint32(p.b)
		m.pre[uint16(h)] = true
		m.byHead[h] = append(m.byHead[h], i)
	}
	return m
}

// base64Core returns the characters of the encoding of key that depend only
// on key's bits when key starts align bytes into a longer stream (align 0 is
// the standalone encoding without padding, which also prefixes the padded one).
func base64Core(enc *base64.Encoding, key []byte, align int) []byte {
	buf := make([]byte, align+len(key)+2)
	copy(buf[align:], key)
	s := enc.EncodeToString(buf)
	lo, hi := 8*align, 8*(align+len(key)) // key's bit range
	var out []byte
	for i := 0; i < len(s); i++ {
		if 6*i >= lo && 6*i+6 <= hi {
			out = append(out, s[i])
		}
	}
	return out
}

// scan reports matches starting at positions [0, limit) of buf; base is
// buf[0]'s offset in the file.
func (m *matcher) scan(name string, base int64, buf []byte, limit int) []Finding {
	var out []Finding
	for i := 0; i < limit && i+m.minLen <= len(buf); i++ {
		if !m.pre[uint16(buf[i])|uint16(buf[i+1])<<8] {
			continue
		}
		for _, pi := range m.byHead[binary.LittleEndian.Uint32(buf[i:])] {
			p := m.pats[pi]
			if i+len(p.b) <= len(buf) && string(buf[i:i+len(p.b)]) == string(p.b) {
				out = append(out, Finding{Path: name, Offset: base + int64(i), Encoding: p.enc, DEK: p.dek})
			}
		}
	}
	return out
}

func (m *matcher) scanReader(name string, r io.Reader) ([]Finding, error) {
	const chunk = 1 << 20
	if m.data == nil {
		m.data = make([]byte, chunk)
	}
	var (
		out  []Finding
		base int64
		buf  = m.work[:0]
	)
	defer func() { m.work = buf[:0] }() // the buffers are reused for the next file
	for {
		n, err := io.ReadFull(r, m.data)
		eof := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
		if err != nil && !eof {
			return out, err
		}
		buf = append(buf, m.data[:n]...)
		limit := len(buf) - (m.maxLen - 1)
		if eof {
			limit = len(buf)
		}
		if limit > 0 {
			out = append(out, m.scan(name, base, buf, limit)...)
		} else {
			limit = 0
		}
		if eof {
			return out, nil
		}
		// Keep the unscanned tail (a DEK may straddle two chunks).
		buf = buf[:copy(buf, buf[limit:])]
		base += int64(limit)
	}
}
