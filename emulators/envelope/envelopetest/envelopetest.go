// Package envelopetest holds test helpers for the envelope encryption
// check: Guard registers, for a test that writes data, a cleanup that scans
// the data directories for any plaintext DEK of the run.
package envelopetest

import (
	"testing"

	"github.com/hsmlab/hsmlab/emulators/envelope"
)

// Guard registers a t.Cleanup that runs envelope.ScanDir over every dir with
// reg and fails the test for each plaintext DEK found, or when reg is still
// empty at the end (a sign that the registry was not handed to the emulator).
// Call it after creating the directories (t.TempDir), so that the scan runs
// before they are removed.
func Guard(t testing.TB, reg *envelope.Registry, dirs ...string) {
	t.Helper()
	t.Cleanup(func() {
		if reg.Len() == 0 {
			t.Errorf("plaintext-DEK check: the registry holds no DEK; pass it to the emulator under test")
			return
		}
		for _, dir := range dirs {
			found, err := envelope.ScanDir(dir, reg)
			if err != nil {
				t.Errorf("plaintext-DEK check: %v", err)
			}
			for _, f := range found {
				t.Errorf("plaintext-DEK check: %v", f)
			}
		}
	})
}

// CheckBytes fails the test if data (named name) holds a plaintext DEK of reg.
func CheckBytes(t testing.TB, reg *envelope.Registry, name string, data []byte) {
	t.Helper()
	for _, f := range envelope.ScanBytes(name, data, reg) {
		t.Errorf("plaintext-DEK check: %v", f)
	}
}
