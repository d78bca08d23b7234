package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/hsmlab/hsmlab/emulators/envelope"
)

// AzblobBackend is the data path through the azblob SDK, against Azurite or
// a real storage account: blobs are uploaded already sealed, with the
// wrapped account key and its version in the blob metadata; each account
// record is a blob in the container Prefix+"hsmlab-accounts".
type AzblobBackend struct {
	c      *azblob.Client
	prefix string
}

var _ Backend = (*AzblobBackend)(nil)

// NewAzblobBackend returns a backend on c. prefix is prepended to every
// container name (so that several emulated accounts can share one real
// account); it must keep the names valid (lowercase letters, digits, '-').
func NewAzblobBackend(c *azblob.Client, prefix string) *AzblobBackend {
	return &AzblobBackend{c: c, prefix: prefix}
}

// NewAzblobClient returns an azblob client for a connection string (for
// Azurite, its well-known development account). maxRetries is passed to the
// SDK's retry policy: -1 disables retries, so fault tests see raw
// behaviour; 0 keeps the SDK default (3).
func NewAzblobClient(connectionString string, maxRetries int32) (*azblob.Client, error) {
	c, err := azblob.NewClientFromConnectionString(connectionString, &azblob.ClientOptions{
		ClientOptions: azcore.ClientOptions{Retry: policy.RetryOptions{MaxRetries: maxRetries}},
	})
	if err != nil {
		return nil, fmt.Errorf("azblob client: %w", err)
	}
	return c, nil
}

const accountsContainer = "hsmlab-accounts"

// LoadAccount implements Backend.
func (b *AzblobBackend) LoadAccount(ctx context.Context, account string) (envelope.WrappedDEK, bool, error) {
	var w envelope.WrappedDEK
	data, _, err := b.GetBlob(ctx, accountsContainer, account)
	if err == ErrBlobNotFound {
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
func (b *AzblobBackend) SaveAccount(ctx context.Context, account string, w envelope.WrappedDEK) error {
	data, err := json.Marshal(w)
	if err != nil {
		return err
	}
	return b.PutBlob(ctx, accountsContainer, account, data, metadata(w))
}

// PutBlob implements Backend; it creates the container on first use.
func (b *AzblobBackend) PutBlob(ctx context.Context, cont, name string, data []byte, meta map[string]string) error {
	md := make(map[string]*string, len(meta))
	for k, v := range meta {
		md[k] = &v
	}
	opts := &azblob.UploadBufferOptions{Metadata: md}
	_, err := b.c.UploadBuffer(ctx, b.prefix+cont, name, data, opts)
	if bloberror.HasCode(err, bloberror.ContainerNotFound) {
		_, err = b.c.CreateContainer(ctx, b.prefix+cont, nil)
		if err != nil && !bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
			return fmt.Errorf("azblob create container: %w", err)
		}
		_, err = b.c.UploadBuffer(ctx, b.prefix+cont, name, data, opts)
	}
	if err != nil {
		return fmt.Errorf("azblob upload: %w", err)
	}
	return nil
}

// GetBlob implements Backend. Metadata keys come back canonicalized by the
// service (hsmlabkeyname → Hsmlabkeyname); callers look them up
// case-insensitively (WrappedFromMetadata does).
func (b *AzblobBackend) GetBlob(ctx context.Context, cont, name string) ([]byte, map[string]string, error) {
	resp, err := b.c.DownloadStream(ctx, b.prefix+cont, name, nil)
	if bloberror.HasCode(err, bloberror.BlobNotFound, bloberror.ContainerNotFound) {
		return nil, nil, ErrBlobNotFound
	}
	if err != nil {
		return nil, nil, fmt.Errorf("azblob download: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("azblob download body: %w", err)
	}
	meta := make(map[string]string, len(resp.Metadata))
	for k, v := range resp.Metadata {
		if v != nil {
			meta[k] = *v
		}
	}
	return data, meta, nil
}

// DeleteBlob implements Backend.
func (b *AzblobBackend) DeleteBlob(ctx context.Context, cont, name string) error {
	_, err := b.c.DeleteBlob(ctx, b.prefix+cont, name, nil)
	if bloberror.HasCode(err, bloberror.BlobNotFound, bloberror.ContainerNotFound) {
		return ErrBlobNotFound
	}
	if err != nil {
		return fmt.Errorf("azblob delete: %w", err)
	}
	return nil
}

// ListBlobs implements Backend.
func (b *AzblobBackend) ListBlobs(ctx context.Context, cont string) ([]string, error) {
	var names []string
	pager := b.c.NewListBlobsFlatPager(b.prefix+cont, &container.ListBlobsFlatOptions{})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if bloberror.HasCode(err, bloberror.ContainerNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("azblob list: %w", err)
		}
		for _, it := range page.Segment.BlobItems {
			if it != nil && it.Name != nil {
				names = append(names, *it.Name)
			}
		}
	}
	slices.Sort(names)
	return names, nil
}
