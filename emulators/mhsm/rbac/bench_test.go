package rbac_test

import (
	"fmt"
	"testing"

	"github.com/hsmlab/hsmlab/emulators/mhsm/rbac"
)

// benchStore is a busy HSM: 200 principals with a key-scope assignment each,
// and one CMK identity with four assignments (three key scopes and an
// auditor role at "/").
func benchStore(b *testing.B) *rbac.Store {
	b.Helper()
	s := rbac.NewStore(rbac.Options{})
	for i := range 200 {
		mustAssign(b, s, rbac.Assignment{Name: fmt.Sprintf("o%d", i), Principal: fmt.Sprintf("other-%d", i),
			RoleDefinitionID: rbac.CryptoServiceEncryptionUserRoleID, Scope: rbac.KeyScope(fmt.Sprintf("K%d", i))})
	}
	for i, k := range []string{"Contoso-STORAGE-CMK", "Contoso-DISK-CMK", "Contoso-SQLMI-CMK"} {
		mustAssign(b, s, rbac.Assignment{Name: fmt.Sprintf("m%d", i), Principal: "cmk-identity",
			RoleDefinitionID: rbac.CryptoServiceEncryptionUserRoleID, Scope: rbac.KeyScope(k)})
	}
	mustAssign(b, s, rbac.Assignment{Name: "aud", Principal: "cmk-identity", RoleDefinitionID: rbac.CryptoAuditorRoleID, Scope: "/"})
	return s
}

func BenchmarkAuthorize(b *testing.B) {
	s := benchStore(b)
	b.Run("allowed unwrap, last of 4 assignments", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := s.Authorize("cmk-identity", rbac.KeysUnwrap, "/keys/Contoso-SQLMI-CMK"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("denied unwrap, 4 assignments scanned", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := s.Authorize("cmk-identity", rbac.KeysUnwrap, "/keys/Contoso-OTHER-CMK"); err == nil {
				b.Fatal("allowed")
			}
		}
	})
	b.Run("allowed unwrap, parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := s.Authorize("cmk-identity", rbac.KeysUnwrap, "/keys/Contoso-SQLMI-CMK"); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
