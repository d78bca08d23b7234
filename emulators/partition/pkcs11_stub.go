//go:build !cgo

package partition

// DomainKeyLabel is the CKA_LABEL of the domain key object in a PKCS#11
// partition's token (see the cgo build).
const DomainKeyLabel = "hsmlab/domain-key"

// Module stands in for the PKCS#11 module of cgo builds; without cgo it
// cannot be opened.
type Module struct{}

// OpenModule returns ErrPKCS11Unsupported: PKCS#11 support requires cgo.
func OpenModule(path string) (*Module, error) {
	return nil, ErrPKCS11Unsupported
}

// Path returns "".
func (m *Module) Path() string { return "" }

// Close does nothing.
func (m *Module) Close() error { return nil }

// TokenLabels returns ErrPKCS11Unsupported.
func (m *Module) TokenLabels() ([]string, error) { return nil, ErrPKCS11Unsupported }

// InitToken returns ErrPKCS11Unsupported.
func (m *Module) InitToken(label, soPin, pin string) error { return ErrPKCS11Unsupported }

// NewPKCS11 returns ErrPKCS11Unsupported: PKCS#11 support requires cgo.
func NewPKCS11(mod *Module, name, tokenLabel, pin string) (Partition, error) {
	return nil, ErrPKCS11Unsupported
}
