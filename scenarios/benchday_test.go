package scenarios_test

import (
	"os"
	"time"
)

func init() {
	if d, err := time.ParseDuration(os.Getenv("HSMLAB_BENCH_DAY")); err == nil {
		benchDay = d
	}
}
