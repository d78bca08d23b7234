package sqlmi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/hsmlab/hsmlab/emulators/envelope"
	"github.com/hsmlab/hsmlab/emulators/internal/atomicfile"
)

// Store is an instance's data path: encrypted rows and, next to them, the
// wrapped DEK. It never sees a plaintext DEK or row. Implementations are
// safe for concurrent use.
type Store interface {
	// LoadDEK returns the wrapped DEK; ok is false before the first SaveDEK.
	LoadDEK(ctx context.Context) (w envelope.WrappedDEK, ok bool, err error)
	// SaveDEK stores the wrapped DEK, replacing the old one.
	SaveDEK(ctx context.Context, w envelope.WrappedDEK) error
	// Get returns a sealed row; ok is false when there is none.
	Get(ctx context.Context, key string) (sealed []byte, ok bool, err error)
	// Put stores a sealed row, replacing any previous one.
	Put(ctx context.Context, key string, sealed []byte) error
	// Delete removes a row; a missing row is not an error.
	Delete(ctx context.Context, key string) error
	// Keys returns every row key, sorted.
	Keys(ctx context.Context) ([]string, error)
}

// DirStore is the embedded data path: an in-process row store persisted to
// a directory — <dir>/dek.json (the wrapped DEK) and one file of sealed
// bytes per row under <dir>/rows/. Rows are cached in memory; every write
// goes to disk first (temporary file, then rename).
type DirStore struct {
	dir string
	mu  sync.RWMutex // orders writes and reads of one store
}

var _ Store = (*DirStore)(nil)

// NewDirStore opens (or creates) a store in dir. Rows live only on disk
// (one file each): a long run's rows are not held in memory.
func NewDirStore(dir string) (*DirStore, error) {
	if err := os.MkdirAll(filepath.Join(dir, "rows"), 0o755); err != nil {
		return nil, fmt.Errorf("dir store: %w", err)
	}
	return &DirStore{dir: dir}, nil
}

// Dir returns the store's directory.
func (s *DirStore) Dir() string { return s.dir }

func (s *DirStore) rowPath(key string) string {
	return filepath.Join(s.dir, "rows", url.PathEscape(key)+".row")
}

// LoadDEK implements Store.
func (s *DirStore) LoadDEK(context.Context) (envelope.WrappedDEK, bool, error) {
	var w envelope.WrappedDEK
	b, err := os.ReadFile(filepath.Join(s.dir, "dek.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return w, false, nil
	}
	if err != nil {
		return w, false, err
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return w, false, fmt.Errorf("dek.json: %w", err)
	}
	return w, true, nil
}

// SaveDEK implements Store.
func (s *DirStore) SaveDEK(_ context.Context, w envelope.WrappedDEK) error {
	b, err := json.Marshal(w)
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(s.dir, "dek.json"), b)
}

// Get implements Store.
func (s *DirStore) Get(_ context.Context, key string) ([]byte, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	b, err := os.ReadFile(s.rowPath(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("dir store: %w", err)
	}
	return b, true, nil
}

// Put implements Store.
func (s *DirStore) Put(_ context.Context, key string, sealed []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return atomicfile.Write(s.rowPath(key), sealed)
}

// Delete implements Store.
func (s *DirStore) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.Remove(s.rowPath(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Keys implements Store.
func (s *DirStore) Keys(context.Context) ([]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ents, err := os.ReadDir(filepath.Join(s.dir, "rows"))
	if err != nil {
		return nil, fmt.Errorf("dir store: %w", err)
	}
	keys := make([]string, 0, len(ents))
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".row")
		if !ok || !e.Type().IsRegular() {
			continue
		}
		if key, err := url.PathUnescape(name); err == nil {
			keys = append(keys, key)
		}
	}
	slices.Sort(keys)
	return keys, nil
}
