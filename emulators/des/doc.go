// Package des emulates managed disks encrypted through a Disk Encryption
// Set (facts §9): a DES is a regional resource with its own identity (its
// own keyclient.Client) that points at a customer-managed key — a fixed
// version, or the latest one with auto-rotation; a Disk is an encrypted
// disk-image file (a header with the wrapped DEK and its key version, then
// one AES-256-GCM sealed slot per block, the block index bound into the
// associated data); a VM boots only if the DES can unwrap every disk's DEK.
// Replication (Azure Site Recovery) keeps a replica of a VM's disks in
// another region under that region's DES.
//
// # State machines
//
// DES (its key, checked every KeyCheckInterval — undocumented, default 5m;
// t_ok is the last check that found the key usable):
//
//	Healthy      key disabled/deleted/role removed seen  KeyLost
//	             (or expired, if ExpiredKeyStopsVMs)
//	KeyLost      key usable again                         Healthy
//	KeyLost      t_ok + IOFailAfterKeyLoss (1h) passes     DisksFailed: disk I/O fails, running VMs shut down
//	DisksFailed  key usable again                         Healthy (VMs stay down until booted)
//
// An unreachable or throttling key store gives no information: the state
// stays (running VMs keep their DEKs in memory; boots fail).
//
// VM:
//
//	Stopped            Boot() succeeds (every DEK unwraps)   Running
//	Running            Shutdown()                            Stopped
//	Running            its DES goes DisksFailed              ShutDownByPlatform
//	ShutDownByPlatform Boot() succeeds (key enabled again)   Running
//
// A Boot that fails leaves the state unchanged and returns ErrBootFailed
// wrapping the key-store error (class kept). ReadBlock/WriteBlock work only
// while Running: ShutDownByPlatform gives ErrIOFailed, Stopped ErrNotRunning.
//
// Replication (ASR): Protected (replica disks exist in the target region,
// wrapped by the target DES's key version at the time replication was
// enabled) or Unprotected (no target DES); FailedOver after Failover. The
// replica keeps its key version through rotations until
// ReenableReplication; Failover without a target DES fails with
// ErrNoTargetDES.
//
// This package must not import the engine (lab) or topology; it imports
// lab/clock, emulators/keyclient and emulators/envelope.
package des
