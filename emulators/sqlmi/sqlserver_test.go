package sqlmi_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/hsmlab/hsmlab/emulators/envelope/envelopetest"
	"github.com/hsmlab/hsmlab/emulators/sqlmi"
)

// The SQL Server tests run when HSMLAB_SQLSERVER_DSN holds a go-mssqldb
// connection string (the containers provider starts a SQL Server);
// HSMLAB_REQUIRE_SQLSERVER=1 turns their skip into a failure.

func sqlServerDSN(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("HSMLAB_SQLSERVER_DSN")
	if dsn == "" {
		msg := "HSMLAB_SQLSERVER_DSN is not set: the SQL Server data-path tests need a SQL Server; " +
			"set it to a go-mssqldb connection string, e.g. sqlserver://sa:<password>@127.0.0.1:1433?database=master"
		if os.Getenv("HSMLAB_REQUIRE_SQLSERVER") == "1" {
			t.Fatal(msg + " [HSMLAB_REQUIRE_SQLSERVER=1]")
		}
		t.Skip(msg)
	}
	return dsn
}

// sqlServerStore opens a store for a unique instance name, purged and
// checked for plaintext DEKs when the test ends.
func sqlServerStore(t *testing.T, e *env, name string) *sqlmi.SQLServerStore {
	t.Helper()
	dsn := sqlServerDSN(t)
	b := make([]byte, 4)
	rand.Read(b)
	st, err := sqlmi.OpenSQLServer(e.ctx, dsn, name+"-"+hex.EncodeToString(b), sqlmi.SQLServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Purge(e.ctx); err != nil {
			t.Errorf("purge: %v", err)
		}
		st.Close()
	})
	t.Cleanup(func() {
		dump, err := st.Dump(e.ctx)
		if err != nil {
			t.Errorf("plaintext-DEK check: dump: %v", err)
			return
		}
		envelopetest.CheckBytes(t, e.reg, "sqlserver:"+name, dump)
	})
	return st
}

// TestSQLServerInstance: the TDE state machine over SQL Server: rows are
// stored sealed, the wrapped DEK in its own table; a reopened instance reads
// them; a 20-minute denial heals.
func TestSQLServerInstance(t *testing.T) {
	e := newEnv(t)
	st := sqlServerStore(t, e, "chennai")
	m := e.open("chennai", st, nil)
	secret := "card 4111-1111-1111-1111"
	for i := range 10 {
		mustWrite(t, e.ctx, m, fmt.Sprintf("row/%d", i), secret)
	}
	mustRead(t, e.ctx, m, "row/3", secret)
	if raw, ok, err := st.Get(e.ctx, "row/3"); err != nil || !ok || bytes.Contains(raw, []byte(secret)) {
		t.Fatalf("stored row: ok=%v err=%v plaintext=%v", ok, err, bytes.Contains(raw, []byte(secret)))
	}
	if w, ok, err := st.LoadDEK(e.ctx); err != nil || !ok || w.KeyVersion != e.v1 {
		t.Fatalf("dek record: %+v %v %v", w, ok, err)
	}
	e.keys.Revoke("mi-chennai", cmk)
	e.at(10 * time.Minute)
	probe(t, e.ctx, m, "10m", sqlmi.Inaccessible)
	e.keys.Grant("mi-chennai", cmk)
	e.at(90 * time.Minute)
	probe(t, e.ctx, m, "90m", sqlmi.Online)
	m.Close()
	m2 := e.open("chennai", st, nil)
	mustRead(t, e.ctx, m2, "row/9", secret)
}

// TestSQLServerForcedFailover: the failover group over two SQL Server
// stores loses exactly the writes inside the lag.
func TestSQLServerForcedFailover(t *testing.T) {
	e := newEnv(t)
	chennai := e.open("chennai", sqlServerStore(t, e, "chennai"), nil)
	pune := e.open("pune", sqlServerStore(t, e, "pune"), nil)
	g, err := sqlmi.NewFailoverGroup(e.ctx, sqlmi.GroupConfig{Name: "fog", Primary: chennai, Secondary: pune, ReplicationLag: lag, Clock: e.vc})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	writeEverySecond(t, e, chennai, 0, 20)
	rep, err := g.Failover(false)
	if err != nil || rep.LostWrites != 5 {
		t.Fatalf("forced failover: %+v %v", rep, err)
	}
	mustRead(t, e.ctx, pune, "k15", "v15")
}
