package envelope

import (
	"context"
	"fmt"

	"github.com/hsmlab/hsmlab/emulators/keyclient"
)

// WrappedDEK is what is stored next to the data: the DEK wrapped by one
// version of a customer-managed key. It holds no secret in the clear.
type WrappedDEK struct {
	KeyName    string        `json:"keyName"`
	KeyVersion string        `json:"keyVersion"`
	Alg        keyclient.Alg `json:"alg"`
	Value      []byte        `json:"value"`
}

// Wrap wraps d with RSA-OAEP-256 under key name at version ("" = the key's
// current version) and returns the stored form, which names the version
// that actually wrapped it.
func Wrap(ctx context.Context, kc keyclient.Client, name, version string, d *DEK) (WrappedDEK, error) {
	d.mu.RLock()
	if d.key == nil {
		d.mu.RUnlock()
		return WrappedDEK{}, fmt.Errorf("wrap dek with %s: %w", name, ErrZeroed)
	}
	w, err := kc.WrapKey(ctx, name, version, keyclient.RSAOAEP256, d.key)
	d.mu.RUnlock()
	if err != nil {
		return WrappedDEK{}, fmt.Errorf("wrap dek with %s: %w", name, err)
	}
	if w.KeyVersion == "" {
		w.KeyVersion = version
	}
	if w.Alg == "" {
		w.Alg = keyclient.RSAOAEP256
	}
	return WrappedDEK{KeyName: name, KeyVersion: w.KeyVersion, Alg: w.Alg, Value: w.Value}, nil
}

// Unwrap unwraps w through kc and returns the DEK, remembered in reg (nil:
// not remembered). Errors keep the key store's class (keyclient.Class), so
// callers can tell denied from unreachable. A value that is not a 32-byte
// key is ErrBadDEK with class keyclient.ErrInvalid.
func Unwrap(ctx context.Context, kc keyclient.Client, w WrappedDEK, reg *Registry) (*DEK, error) {
	b, err := kc.UnwrapKey(ctx, w.KeyName, keyclient.Wrapped{KeyVersion: w.KeyVersion, Alg: w.Alg, Value: w.Value})
	if err != nil {
		return nil, fmt.Errorf("unwrap dek with %s/%s: %w", w.KeyName, w.KeyVersion, err)
	}
	// An early Managed HSM quirk returned NUL-padded base64, giving a 33-byte
	// AES key (facts §14, hashicorp/go-kms-wrapping#43).
	if len(b) == DEKSize+1 && b[DEKSize] == 0 {
		b = b[:DEKSize]
	}
	d, err := fromBytes(b)
	if err != nil {
		return nil, fmt.Errorf("unwrap dek with %s/%s: %w", w.KeyName, w.KeyVersion, &keyclient.Error{
			Class: keyclient.ErrInvalid, Code: "BadKeyLength", Op: "unwrapKey", Key: w.KeyName, Err: err,
		})
	}
	reg.Add(d.key)
	return d, nil
}
