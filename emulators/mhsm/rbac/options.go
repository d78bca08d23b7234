package rbac

// Default object limits (facts §3b, LIMITS). They come from the preview-era
// "Managed HSM (preview)" section of the Key Vault service-limits doc; their
// current values are UNCONFIRMED.
const (
	DefaultMaxHSMScopeAssignments   = 50 // role assignments at HSM scope ("/" and "/keys" together)
	DefaultMaxKeyScopeAssignments   = 10 // role assignments at each key scope "/keys/<name>"
	DefaultMaxCustomRoleDefinitions = 50 // custom role definitions per HSM
)

// Options configures the built-in roles and the limits of a Store. The zero
// value is valid: a limit <= 0 means its default.
type Options struct {
	// AuditorCanPurgeAsPrinted chooses between the two readings of the ROLES
	// permitted-operations table (facts §6), which marks
	// Microsoft.KeyVault/managedHsm/keys/deletedKeys/delete (purge) with an X
	// for Managed HSM Crypto Auditor — "as printed; looks like a doc error",
	// since the same doc describes the auditor as able to "read (but not
	// use) key attributes".
	//
	//   false (default): the corrected reading — the auditor is read-only and
	//                    cannot purge.
	//   true:            the table as printed — the auditor can purge.
	AuditorCanPurgeAsPrinted bool

	// MaxHSMScopeAssignments limits the role assignments at HSM scope, "/"
	// and "/keys" counted together (default 50; preview-era, UNCONFIRMED).
	MaxHSMScopeAssignments int
	// MaxKeyScopeAssignments limits the role assignments at each key scope
	// (default 10; preview-era, UNCONFIRMED).
	MaxKeyScopeAssignments int
	// MaxCustomRoleDefinitions limits the custom role definitions (default
	// 50; preview-era, UNCONFIRMED). Built-in roles do not count.
	MaxCustomRoleDefinitions int
}

// DefaultOptions returns the options a zero Options stands for, with every
// limit filled in.
func DefaultOptions() Options { return Options{}.withDefaults() }

// withDefaults fills in every limit <= 0 with its default.
func (o Options) withDefaults() Options {
	if o.MaxHSMScopeAssignments <= 0 {
		o.MaxHSMScopeAssignments = DefaultMaxHSMScopeAssignments
	}
	if o.MaxKeyScopeAssignments <= 0 {
		o.MaxKeyScopeAssignments = DefaultMaxKeyScopeAssignments
	}
	if o.MaxCustomRoleDefinitions <= 0 {
		o.MaxCustomRoleDefinitions = DefaultMaxCustomRoleDefinitions
	}
	return o
}
