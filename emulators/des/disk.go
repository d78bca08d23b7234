package des

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/hsmlab/hsmlab/emulators/envelope"
)

// Disk image layout: a HeaderSize-byte header ("HSMLABDISK1\n", a JSON
// header, zero padding), then Blocks slots of BlockSize+envelope.Overhead
// bytes (nonce, sealed block, tag). An all-zero slot is a block never
// written (reads as zeros), so new images are sparse files.
const (
	HeaderSize       = 4096
	DefaultBlockSize = 4096
	magic            = "HSMLABDISK1\n"
)

// header is the image header. Only Wrapped changes after creation (under
// Disk.mu); the other fields are immutable and read without the lock.
type header struct {
	Name      string              `json:"name"`
	ID        string              `json:"id"` // random; bound into every block's associated data
	BlockSize int                 `json:"blockSize"`
	Blocks    int                 `json:"blocks"`
	DES       string              `json:"des"`
	Wrapped   envelope.WrappedDEK `json:"wrappedDek"`
}

// Disk is an encrypted disk image file whose DEK is wrapped by a DES's key.
// The plaintext DEK is held in memory only while a running VM uses the
// disk. Methods are safe for concurrent use.
type Disk struct {
	path string

	mu  sync.RWMutex
	hdr header
	des *DES
	dek *envelope.DEK // while in use by a running VM
}

// CreateDisk creates a new disk image at path with a fresh random DEK
// wrapped by the DES's current key version, and attaches it to the DES.
// blockSize 0 means DefaultBlockSize.
func (d *DES) CreateDisk(ctx context.Context, name, path string, blocks, blockSize int) (*Disk, error) {
	if blockSize == 0 {
		blockSize = DefaultBlockSize
	}
	if blocks <= 0 || blockSize <= 0 {
		return nil, fmt.Errorf("create disk %s: %w", name, ErrBlockRange)
	}
	dk, dek, err := newDisk(ctx, d, name, path, blocks, blockSize)
	dek.Zero()
	if err != nil {
		return nil, fmt.Errorf("create disk %s: %w", name, err)
	}
	d.attach(dk)
	return dk, nil
}

// newDisk writes an empty image whose DEK is wrapped by d, and returns the
// plaintext DEK too (the caller zeroes it or keeps it).
func newDisk(ctx context.Context, d *DES, name, path string, blocks, blockSize int) (*Disk, *envelope.DEK, error) {
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, nil, err
	}
	dek, err := envelope.NewDEK(d.cfg.Registry)
	if err != nil {
		return nil, nil, err
	}
	w, err := envelope.Wrap(ctx, d.cfg.Keys, d.cfg.KeyName, d.KeyVersion(), dek)
	if err != nil {
		dek.Zero()
		return nil, nil, err
	}
	dk := &Disk{path: path, des: d, hdr: header{Name: name, ID: hex.EncodeToString(id), BlockSize: blockSize, Blocks: blocks, DES: d.Name(), Wrapped: w}}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		dek.Zero()
		return nil, nil, err
	}
	defer f.Close()
	if err := f.Truncate(int64(HeaderSize + blocks*dk.slotSize())); err != nil {
		dek.Zero()
		return nil, nil, err
	}
	if err := writeHeader(f, dk.hdr); err != nil {
		dek.Zero()
		return nil, nil, err
	}
	return dk, dek, nil
}

// OpenDisk attaches an existing disk image to the DES.
func (d *DES) OpenDisk(path string) (*Disk, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open disk: %w", err)
	}
	defer f.Close()
	buf := make([]byte, HeaderSize)
	if _, err := f.ReadAt(buf, 0); err != nil {
		return nil, fmt.Errorf("open disk %s: %w", path, err)
	}
	if !bytes.HasPrefix(buf, []byte(magic)) {
		return nil, fmt.Errorf("open disk %s: %w: bad magic", path, ErrCorrupt)
	}
	var h header
	js := bytes.TrimRight(buf[len(magic):], "\x00")
	if err := json.Unmarshal(js, &h); err != nil {
		return nil, fmt.Errorf("open disk %s: %w: %v", path, ErrCorrupt, err)
	}
	dk := &Disk{path: path, des: d, hdr: h}
	d.attach(dk)
	return dk, nil
}

func writeHeader(f *os.File, h header) error {
	js, err := json.Marshal(h)
	if err != nil {
		return err
	}
	if len(magic)+len(js) > HeaderSize {
		return errors.New("disk header too large")
	}
	buf := make([]byte, HeaderSize)
	copy(buf, magic)
	copy(buf[len(magic):], js)
	_, err = f.WriteAt(buf, 0)
	return err
}

// Name returns the disk name.
func (dk *Disk) Name() string { return dk.hdr.Name }

// Path returns the image file path.
func (dk *Disk) Path() string { return dk.path }

// Blocks returns the number of blocks.
func (dk *Disk) Blocks() int { return dk.hdr.Blocks }

// BlockSize returns the block size in bytes.
func (dk *Disk) BlockSize() int { return dk.hdr.BlockSize }

// KeyVersion returns the key version that wraps the disk's DEK.
func (dk *Disk) KeyVersion() string {
	dk.mu.RLock()
	defer dk.mu.RUnlock()
	return dk.hdr.Wrapped.KeyVersion
}

// DES returns the disk encryption set the disk is attached to.
func (dk *Disk) DES() *DES {
	dk.mu.RLock()
	defer dk.mu.RUnlock()
	return dk.des
}

func (dk *Disk) slotSize() int { return dk.hdr.BlockSize + envelope.Overhead }

func (dk *Disk) aad() []byte { return []byte("disk/" + dk.hdr.ID) }

func (dk *Disk) wrapped() envelope.WrappedDEK {
	dk.mu.RLock()
	defer dk.mu.RUnlock()
	return dk.hdr.Wrapped
}

// setDEK installs (or, with nil, zeroes and drops) the in-memory DEK.
func (dk *Disk) setDEK(dek *envelope.DEK) {
	dk.mu.Lock()
	defer dk.mu.Unlock()
	if dk.dek != nil && dk.dek != dek {
		dk.dek.Zero()
	}
	dk.dek = dek
}

func (dk *Disk) checkBlock(i int) error {
	if i < 0 || i >= dk.hdr.Blocks {
		return fmt.Errorf("block %d of %d: %w", i, dk.hdr.Blocks, ErrBlockRange)
	}
	return nil
}

// readBlock reads block i with the in-memory DEK.
func (dk *Disk) readBlock(i int) ([]byte, error) {
	if err := dk.checkBlock(i); err != nil {
		return nil, err
	}
	dk.mu.RLock()
	defer dk.mu.RUnlock()
	return dk.readWith(dk.dek, i)
}

func (dk *Disk) readWith(dek *envelope.DEK, i int) ([]byte, error) {
	if dek == nil {
		return nil, ErrNotRunning
	}
	f, err := os.Open(dk.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	slot := make([]byte, dk.slotSize())
	if _, err := f.ReadAt(slot, int64(HeaderSize+i*dk.slotSize())); err != nil {
		return nil, err
	}
	if allZero(slot) {
		return make([]byte, dk.hdr.BlockSize), nil
	}
	b, err := dek.OpenBlock(uint64(i), slot, dk.aad())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return b, nil
}

// writeBlock seals data (exactly BlockSize bytes) into block i.
func (dk *Disk) writeBlock(i int, data []byte) error {
	if err := dk.checkBlock(i); err != nil {
		return err
	}
	if len(data) != dk.hdr.BlockSize {
		return fmt.Errorf("write of %d bytes to %d-byte blocks: %w", len(data), dk.hdr.BlockSize, ErrBlockRange)
	}
	dk.mu.RLock()
	defer dk.mu.RUnlock()
	return dk.writeWith(dk.dek, i, data)
}

func (dk *Disk) writeWith(dek *envelope.DEK, i int, data []byte) error {
	if dek == nil {
		return ErrNotRunning
	}
	slot, err := dek.SealBlock(uint64(i), data, dk.aad())
	if err != nil {
		return err
	}
	f, err := os.OpenFile(dk.path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteAt(slot, int64(HeaderSize+i*dk.slotSize()))
	return err
}

// rewrap re-wraps the disk's DEK with version through d, using the
// in-memory DEK when the disk is in use, otherwise unwrapping it first.
func (dk *Disk) rewrap(ctx context.Context, d *DES, version string) error {
	dk.mu.RLock()
	dek, old := dk.dek, dk.hdr.Wrapped
	dk.mu.RUnlock()
	if old.KeyVersion == version {
		return nil
	}
	if dek == nil {
		var err error
		if dek, err = envelope.Unwrap(ctx, d.cfg.Keys, old, d.cfg.Registry); err != nil {
			return err
		}
		defer dek.Zero()
	}
	w, err := envelope.Wrap(ctx, d.cfg.Keys, d.cfg.KeyName, version, dek)
	if err != nil {
		return err
	}
	dk.mu.Lock()
	defer dk.mu.Unlock()
	h := dk.hdr
	h.Wrapped = w
	f, err := os.OpenFile(dk.path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := writeHeader(f, h); err != nil {
		return err
	}
	dk.hdr.Wrapped = w // only this field changes; the others are read without the lock
	return nil
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}
