package storage

import (
	"bytes"
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

	"github.com/hsmlab/hsmlab/emulators/envelope"
	"github.com/hsmlab/hsmlab/emulators/internal/atomicfile"
)

// Backend is the data path under an account: it stores sealed blobs with
// their metadata and the account record (the wrapped account key). It never
// sees a plaintext DEK. Implementations are safe for concurrent use.
type Backend interface {
	// LoadAccount returns the account's wrapped key; ok is false when the
	// account does not exist yet.
	LoadAccount(ctx context.Context, account string) (w envelope.WrappedDEK, ok bool, err error)
	// SaveAccount stores the account's wrapped key, replacing the old one.
	SaveAccount(ctx context.Context, account string, w envelope.WrappedDEK) error
	// PutBlob stores data and metadata under container/name (creating the
	// container if needed), replacing any previous blob.
	PutBlob(ctx context.Context, container, name string, data []byte, meta map[string]string) error
	// GetBlob returns a blob; a missing one is ErrBlobNotFound. Metadata
	// keys may come back in another case.
	GetBlob(ctx context.Context, container, name string) (data []byte, meta map[string]string, err error)
	// DeleteBlob removes a blob; a missing one is ErrBlobNotFound.
	DeleteBlob(ctx context.Context, container, name string) error
	// ListBlobs returns the sorted blob names of a container (none if the
	// container does not exist).
	ListBlobs(ctx context.Context, container string) ([]string, error)
}

// DirBackend is the embedded data path: a directory with one file per blob
// (<dir>/blobs/<container>/<escaped name>.blob: a JSON metadata line, then
// the sealed bytes) and one JSON record per account (<dir>/accounts/).
// Files are replaced atomically (write to a temporary file, then rename).
type DirBackend struct {
	dir string
}

var _ Backend = (*DirBackend)(nil)

// NewDirBackend returns a backend rooted at dir, creating it if needed.
func NewDirBackend(dir string) (*DirBackend, error) {
	for _, sub := range []string{"blobs", "accounts"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("dir backend: %w", err)
		}
	}
	return &DirBackend{dir: dir}, nil
}

// Dir returns the backend's root directory.
func (b *DirBackend) Dir() string { return b.dir }

func (b *DirBackend) accountPath(account string) string {
	return filepath.Join(b.dir, "accounts", url.PathEscape(account)+".json")
}

func (b *DirBackend) blobPath(container, name string) string {
	return filepath.Join(b.dir, "blobs", url.PathEscape(container), url.PathEscape(name)+".blob")
}

// LoadAccount implements Backend.
func (b *DirBackend) LoadAccount(_ context.Context, account string) (envelope.WrappedDEK, bool, error) {
	var w envelope.WrappedDEK
	data, err := os.ReadFile(b.accountPath(account))
	if errors.Is(err, fs.ErrNotExist) {
		return w, false, nil
	}
	if err != nil {
		return w, false, err
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return w, false, fmt.Errorf("account record %s: %w", account, err)
	}
	return w, true, nil
}

// SaveAccount implements Backend.
func (b *DirBackend) SaveAccount(_ context.Context, account string, w envelope.WrappedDEK) error {
	data, err := json.Marshal(w)
	if err != nil {
		return err
	}
	return atomicfile.Write(b.accountPath(account), data)
}

// PutBlob implements Backend.
func (b *DirBackend) PutBlob(_ context.Context, container, name string, data []byte, meta map[string]string) error {
	m, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	p := b.blobPath(container, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	buf := make([]byte, 0, len(m)+1+len(data))
	buf = append(append(append(buf, m...), '\n'), data...)
	return atomicfile.Write(p, buf)
}

// GetBlob implements Backend.
func (b *DirBackend) GetBlob(_ context.Context, container, name string) ([]byte, map[string]string, error) {
	raw, err := os.ReadFile(b.blobPath(container, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, ErrBlobNotFound
	}
	if err != nil {
		return nil, nil, err
	}
	m, data, ok := bytes.Cut(raw, []byte{'\n'})
	if !ok {
		return nil, nil, fmt.Errorf("blob file %s/%s: no metadata line", container, name)
	}
	var meta map[string]string
	if err := json.Unmarshal(m, &meta); err != nil {
		return nil, nil, fmt.Errorf("blob file %s/%s: %w", container, name, err)
	}
	return data, meta, nil
}

// DeleteBlob implements Backend.
func (b *DirBackend) DeleteBlob(_ context.Context, container, name string) error {
	err := os.Remove(b.blobPath(container, name))
	if errors.Is(err, fs.ErrNotExist) {
		return ErrBlobNotFound
	}
	return err
}

// ListBlobs implements Backend.
func (b *DirBackend) ListBlobs(_ context.Context, container string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(b.dir, "blobs", url.PathEscape(container)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		n, ok := strings.CutSuffix(e.Name(), ".blob")
		if !ok || !e.Type().IsRegular() {
			continue
		}
		if u, err := url.PathUnescape(n); err == nil {
			names = append(names, u)
		}
	}
	slices.Sort(names)
	return names, nil
}
