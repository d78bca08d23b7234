package partition

// HealthSetter is implemented by partitions whose availability can be
// switched off and on for fault injection: both the pure-Go and the PKCS#11
// backends. While a partition is down, Health and every operation return an
// error wrapping ErrUnavailable; keys are kept.
type HealthSetter interface {
	SetHealthy(up bool)
}

var _ HealthSetter = (*Memory)(nil)
