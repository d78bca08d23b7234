package sim

import (
	"context"
	"crypto/rand"
	"errors"

	"github.com/hsmlab/hsmlab/emulators/keyclient"
	"github.com/hsmlab/hsmlab/emulators/mhsm"
	"github.com/hsmlab/hsmlab/emulators/partition"
	"github.com/hsmlab/hsmlab/topology"
	shared "github.com/hsmlab/hsmlab/topology/workloads"
)

// unwrapProbe holds the DEK an hsm-unwrap probe unwraps again and again.
type unwrapProbe struct {
	principal, key string
	version        string
	wrapped        []byte
}

func (e *env) probeUnwrap(ctx context.Context, p topology.ProbeSpec) topology.ProbeResult {
	region := p.Target
	res := topology.ProbeResult{Region: region}
	if e.regionDown(region) {
		res.Code, res.Err = CodeRegionDown, region+" is down"
		return res
	}
	id := region + "|" + p.As + "|" + p.Key
	e.mu.Lock()
	up := e.unwrapProbes[id]
	e.mu.Unlock()
	caller := func(principal string) mhsm.Caller {
		return mhsm.Caller{Principal: principal, Region: e.callerRegion(region)}
	}
	if up == nil {
		as, key := shared.ProbeIdentity(e.t, region, p.As, p.Key)
		// The probe's DEK is wrapped once, by the lab's operator, so the
		// probe measures unwrap only.
		dek := make([]byte, 32)
		_, _ = rand.Read(dek)
		w, err := e.HSM().WrapKey(ctx, e.Operator(), key, "", partition.RSAOAEP256, dek)
		if err != nil {
			code, _ := mhsm.Code(err)
			res.Code, res.Err = code, err.Error()
			return res
		}
		up = &unwrapProbe{principal: as, key: key, version: w.Version, wrapped: w.Value}
		e.mu.Lock()
		e.unwrapProbes[id] = up
		e.mu.Unlock()
	}
	if err := e.admit(region, up.principal, "unwrapKey", up.key); err != nil {
		res.Code, res.Err = keyclient.Code(err), err.Error()
		return res
	}
	r, err := e.HSM().UnwrapKey(ctx, caller(up.principal), up.key, up.version, partition.RSAOAEP256, up.wrapped)
	if err != nil {
		code, _ := mhsm.Code(err)
		if errors.Is(err, mhsm.ErrUnavailable) {
			code = "ServiceUnavailable"
		}
		res.Code, res.Err = code, err.Error()
		return res
	}
	rtt, route, err := e.path(region, r.Served.Region)
	if err != nil {
		res.Code, res.Err = CodeUnreachable, err.Error()
		return res
	}
	res.OK = true
	res.Latency = rtt + r.Served.Latency()
	res.Pool, res.Partition, res.KeyVersion, res.Path = r.Served.Region, r.Served.Partition, r.Version, route
	return res
}
