package mhsm

import (
	"context"
	"errors"

	"github.com/hsmlab/hsmlab/emulators/keyclient"
	"github.com/hsmlab/hsmlab/emulators/mhsm/rbac"
	"github.com/hsmlab/hsmlab/emulators/partition"
)

// Client is the in-process keyclient.Client: it calls the HSM directly as
// one principal from one region. Every call's Served record is passed to
// Observe when set (the simulator turns it into latency and history).
type Client struct {
	HSM    *HSM
	Caller Caller
	// Observe, when set, receives where each successful call was served.
	Observe func(op string, s Served)
}

var _ keyclient.Client = (*Client)(nil)

// NewClient returns a key client acting as principal from region.
func NewClient(h *HSM, principal, region string) *Client {
	return &Client{HSM: h, Caller: Caller{Principal: principal, Region: region}}
}

// GetKey implements keyclient.Client.
func (c *Client) GetKey(ctx context.Context, name, version string) (keyclient.Key, error) {
	k, s, err := c.HSM.GetKey(ctx, c.Caller, name, version)
	if err != nil {
		return keyclient.Key{}, classify("getKey", name, err)
	}
	c.observe("getKey", s)
	return keyclient.Key{Name: k.Name, Version: k.Version, Type: k.Type, Enabled: k.Attr.Enabled,
		NotBefore: k.Attr.NotBefore, Expires: k.Attr.Expires, Public: k.Public}, nil
}

// WrapKey implements keyclient.Client.
func (c *Client) WrapKey(ctx context.Context, name, version string, alg keyclient.Alg, dek []byte) (keyclient.Wrapped, error) {
	r, err := c.HSM.WrapKey(ctx, c.Caller, name, version, partition.Alg(alg), dek)
	if err != nil {
		return keyclient.Wrapped{}, classify("wrapKey", name, err)
	}
	c.observe("wrapKey", r.Served)
	return keyclient.Wrapped{KeyVersion: r.Version, Alg: alg, Value: r.Value}, nil
}

// UnwrapKey implements keyclient.Client.
func (c *Client) UnwrapKey(ctx context.Context, name string, w keyclient.Wrapped) ([]byte, error) {
	r, err := c.HSM.UnwrapKey(ctx, c.Caller, name, w.KeyVersion, partition.Alg(w.Alg), w.Value)
	if err != nil {
		return nil, classify("unwrapKey", name, err)
	}
	c.observe("unwrapKey", r.Served)
	return r.Value, nil
}

func (c *Client) observe(op string, s Served) {
	if c.Observe != nil {
		c.Observe(op, s)
	}
}

// classify maps the HSM's errors to the key-client classes: a reachable HSM
// that refuses is ErrDenied; no pool to serve is ErrUnreachable.
func classify(op, key string, err error) error {
	code, _ := Code(err)
	class := keyclient.ErrInvalid
	switch {
	case errors.Is(err, rbac.ErrForbidden), errors.Is(err, ErrKeyDisabled), errors.Is(err, ErrKeyNotFound),
		errors.Is(err, ErrKeyExpired), errors.Is(err, ErrKeyNotYetValid), errors.Is(err, ErrOperationNotAllowed),
		errors.Is(err, ErrNotActivated):
		class = keyclient.ErrDenied
	case errors.Is(err, ErrUnavailable), errors.Is(err, ErrWriteUnavailable):
		class = keyclient.ErrUnreachable
	case errors.Is(err, ErrThrottled):
		class = keyclient.ErrThrottled
	}
	return &keyclient.Error{Class: class, Code: code, Op: op, Key: key, Err: err}
}
