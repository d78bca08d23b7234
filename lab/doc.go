// Package lab is hsmlab's engine: the fault and action registry, scenarios
// as data, probes, the fixed run pipeline (up → health check → traffic
// before, during and after each fault → revert → health check → history
// saved → checks → report), metrics computed only from the recorded history,
// expectations, and typed verdicts.
//
// lab imports topology (the system and its providers) and the leaf packages
// lab/clock and lab/history; it never imports cmd, scenarios or results.
package lab
