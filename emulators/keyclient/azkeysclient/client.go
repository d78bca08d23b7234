// Package azkeysclient is a keyclient.Client built on the official azkeys
// SDK, so the workloads can run against the emulator's Key Vault REST
// endpoint (emulators/mhsm/server) and against a real Managed HSM with the
// same code. Errors are classified the way the workloads react to them:
// 401, 403 and 404 are keyclient.ErrDenied (with Key Vault's fine error
// code: the innererror code when there is one, such as KeyDisabled or
// ForbiddenByRbac, else the error code); 429 is ErrThrottled; other 4xx
// are ErrInvalid; 5xx, transport errors and timeouts are ErrUnreachable.
//
// The package imports only emulators/keyclient of the project.
package azkeysclient

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/hsmlab/hsmlab/emulators/keyclient"
)

// Client reaches a Managed HSM (or the emulator) through azkeys as the
// principal of its credential. It is safe for concurrent use.
type Client struct {
	c *azkeys.Client
}

var _ keyclient.Client = (*Client)(nil)

// New returns a client for the vault or HSM at vaultURL. opts may be nil;
// against the emulator on loopback set opts.DisableChallengeResourceVerification
// and a Transport that trusts its certificate.
func New(vaultURL string, cred azcore.TokenCredential, opts *azkeys.ClientOptions) (*Client, error) {
	c, err := azkeys.NewClient(vaultURL, cred, opts)
	if err != nil {
		return nil, fmt.Errorf("azkeys client: %w", err)
	}
	return &Client{c: c}, nil
}

// Azkeys returns the underlying SDK client (for management calls a fault needs).
func (c *Client) Azkeys() *azkeys.Client { return c.c }

// GetKey implements keyclient.Client.
func (c *Client) GetKey(ctx context.Context, name, version string) (keyclient.Key, error) {
	r, err := c.c.GetKey(ctx, name, version, nil)
	if err != nil {
		return keyclient.Key{}, classify("getKey", name, err)
	}
	k := keyclient.Key{Name: name}
	if r.Key != nil {
		if r.Key.KID != nil {
			k.Name, k.Version = r.Key.KID.Name(), r.Key.KID.Version()
		}
		if r.Key.Kty != nil {
			k.Type = string(*r.Key.Kty)
		}
		if len(r.Key.N) > 0 && len(r.Key.E) > 0 && len(r.Key.E) <= 4 {
			k.Public = &rsa.PublicKey{N: new(big.Int).SetBytes(r.Key.N), E: int(new(big.Int).SetBytes(r.Key.E).Int64())}
		}
	}
	if a := r.Attributes; a != nil {
		k.Enabled = a.Enabled != nil && *a.Enabled
		if a.NotBefore != nil {
			k.NotBefore = *a.NotBefore
		}
		if a.Expires != nil {
			k.Expires = *a.Expires
		}
	}
	return k, nil
}

// WrapKey implements keyclient.Client.
func (c *Client) WrapKey(ctx context.Context, name, version string, alg keyclient.Alg, dek []byte) (keyclient.Wrapped, error) {
	a := azkeys.EncryptionAlgorithm(alg)
	r, err := c.c.WrapKey(ctx, name, version, azkeys.KeyOperationParameters{Algorithm: &a, Value: dek}, nil)
	if err != nil {
		return keyclient.Wrapped{}, classify("wrapKey", name, err)
	}
	w := keyclient.Wrapped{KeyVersion: version, Alg: alg, Value: r.Result}
	if r.KID != nil {
		w.KeyVersion = r.KID.Version()
	}
	return w, nil
}

// UnwrapKey implements keyclient.Client.
func (c *Client) UnwrapKey(ctx context.Context, name string, w keyclient.Wrapped) ([]byte, error) {
	a := azkeys.EncryptionAlgorithm(w.Alg)
	r, err := c.c.UnwrapKey(ctx, name, w.KeyVersion, azkeys.KeyOperationParameters{Algorithm: &a, Value: w.Value}, nil)
	if err != nil {
		return nil, classify("unwrapKey", name, err)
	}
	return r.Result, nil
}

// classify wraps an azkeys error in a *keyclient.Error of the right class.
func classify(op, key string, err error) error {
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		// No response: DNS, connection refused or reset, TLS, timeout,
		// cancellation — the key store was not reached.
		return &keyclient.Error{Class: keyclient.ErrUnreachable, Op: op, Key: key, Err: err}
	}
	code := re.ErrorCode
	if inner := innerCode(re.RawResponse); inner != "" {
		code = inner
	}
	class := keyclient.ErrInvalid
	switch s := re.StatusCode; {
	case s == http.StatusUnauthorized, s == http.StatusForbidden, s == http.StatusNotFound:
		class = keyclient.ErrDenied
	case s == http.StatusTooManyRequests:
		class = keyclient.ErrThrottled
	case s >= 500:
		class = keyclient.ErrUnreachable
	}
	return &keyclient.Error{Class: class, Code: code, Op: op, Key: key, Err: err}
}

// innerCode returns error.innererror.code of a Key Vault error body, or "".
// The body stays readable for later readers.
func innerCode(resp *http.Response) string {
	if resp == nil || resp.Body == nil {
		return ""
	}
	var data []byte
	if b, buffered := resp.Body.(interface{ Bytes() []byte }); buffered {
		data = b.Bytes() // azcore's buffered body: read without consuming it
	} else {
		var err error
		if data, err = io.ReadAll(io.LimitReader(resp.Body, 64<<10)); err != nil {
			return ""
		}
		resp.Body = io.NopCloser(bytes.NewReader(data))
	}
	var body struct {
		Error struct {
			InnerError *struct {
				Code string `json:"code"`
			} `json:"innererror"`
		} `json:"error"`
	}
	if json.Unmarshal(data, &body) != nil || body.Error.InnerError == nil {
		return ""
	}
	return body.Error.InnerError.Code
}
