package sqlmi

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"

	_ "github.com/microsoft/go-mssqldb" // registers the "sqlserver" driver

	"github.com/hsmlab/hsmlab/emulators/envelope"
	"github.com/hsmlab/hsmlab/emulators/keyclient"
)

// Default SQL Server table names.
const (
	DefaultRowsTable = "hsmlab_tde_rows"
	DefaultDEKTable  = "hsmlab_tde_deks"
)

// SQLServerStore is the data path on SQL Server through go-mssqldb: sealed
// rows in one table and the wrapped DEK in another, both keyed by the
// instance name, so several emulated instances can share one server. It
// creates the tables if they are missing. (The database itself is not
// TDE-encrypted by SQL Server: the emulator seals every row before it is
// sent.)
type SQLServerStore struct {
	db       *sql.DB
	ownDB    bool
	instance string
	rows     string // quoted table names
	deks     string
}

var _ Store = (*SQLServerStore)(nil)

// SQLServerOptions names the tables; empty fields take the defaults.
type SQLServerOptions struct {
	RowsTable string
	DEKTable  string
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,100}$`)

// OpenSQLServer connects with a go-mssqldb connection string (for example
// "sqlserver://sa:pass@127.0.0.1:1433?database=master"), checks the
// connection and creates the tables. Close closes the connection pool.
func OpenSQLServer(ctx context.Context, dsn, instance string, opts SQLServerOptions) (*SQLServerStore, error) {
	db, err := sql.Open("sqlserver", dsn)
	if err != nil {
		return nil, fmt.Errorf("sql server store: %w", err)
	}
	s, err := NewSQLServerStore(ctx, db, instance, opts)
	if err != nil {
		db.Close()
		return nil, err
	}
	s.ownDB = true
	return s, nil
}

// NewSQLServerStore uses an open *sql.DB (driver "sqlserver"); Close leaves
// it open.
func NewSQLServerStore(ctx context.Context, db *sql.DB, instance string, opts SQLServerOptions) (*SQLServerStore, error) {
	if opts.RowsTable == "" {
		opts.RowsTable = DefaultRowsTable
	}
	if opts.DEKTable == "" {
		opts.DEKTable = DefaultDEKTable
	}
	if !identifier.MatchString(opts.RowsTable) || !identifier.MatchString(opts.DEKTable) {
		return nil, errors.New("sql server store: table names must be plain identifiers")
	}
	if instance == "" || len(instance) > 100 {
		return nil, errors.New("sql server store: instance name must be 1-100 characters")
	}
	s := &SQLServerStore{db: db, instance: instance, rows: "dbo.[" + opts.RowsTable + "]", deks: "dbo.[" + opts.DEKTable + "]"}
	if err := db.PingContext(ctx); err != nil {
		return nil, fmt.Errorf("sql server store: ping: %w", err)
	}
	ddl := fmt.Sprintf(`
IF OBJECT_ID(N'%[1]s', N'U') IS NULL
  CREATE TABLE %[1]s (
    instance NVARCHAR(100) NOT NULL,
    k        NVARCHAR(300) NOT NULL,
    v        VARBINARY(MAX) NOT NULL,
    CONSTRAINT [PK_%[3]s] PRIMARY KEY (instance, k));
IF OBJECT_ID(N'%[2]s', N'U') IS NULL
  CREATE TABLE %[2]s (
    instance    NVARCHAR(100) NOT NULL PRIMARY KEY,
    key_name    NVARCHAR(200) NOT NULL,
    key_version NVARCHAR(100) NOT NULL,
    alg         NVARCHAR(50)  NOT NULL,
    wrapped     VARBINARY(MAX) NOT NULL);`, s.rows, s.deks, opts.RowsTable)
	if _, err := db.ExecContext(ctx, ddl); err != nil {
		return nil, fmt.Errorf("sql server store: create tables: %w", err)
	}
	return s, nil
}

// Close closes the connection pool if OpenSQLServer opened it.
func (s *SQLServerStore) Close() error {
	if s.ownDB {
		return s.db.Close()
	}
	return nil
}

// LoadDEK implements Store.
func (s *SQLServerStore) LoadDEK(ctx context.Context) (envelope.WrappedDEK, bool, error) {
	var w envelope.WrappedDEK
	var alg string
	err := s.db.QueryRowContext(ctx,
		"SELECT key_name, key_version, alg, wrapped FROM "+s.deks+" WHERE instance = @instance",
		sql.Named("instance", s.instance)).Scan(&w.KeyName, &w.KeyVersion, &alg, &w.Value)
	if errors.Is(err, sql.ErrNoRows) {
		return w, false, nil
	}
	if err != nil {
		return w, false, fmt.Errorf("load dek: %w", err)
	}
	w.Alg = keyclient.Alg(alg)
	return w, true, nil
}

// SaveDEK implements Store.
func (s *SQLServerStore) SaveDEK(ctx context.Context, w envelope.WrappedDEK) error {
	_, err := s.db.ExecContext(ctx, `
MERGE `+s.deks+` WITH (HOLDLOCK) AS t
USING (SELECT @instance AS instance) AS src ON t.instance = src.instance
WHEN MATCHED THEN UPDATE SET key_name = @name, key_version = @version, alg = @alg, wrapped = @wrapped
WHEN NOT MATCHED THEN INSERT (instance, key_name, key_version, alg, wrapped)
  VALUES (@instance, @name, @version, @alg, @wrapped);`,
		sql.Named("instance", s.instance), sql.Named("name", w.KeyName), sql.Named("version", w.KeyVersion),
		sql.Named("alg", string(w.Alg)), sql.Named("wrapped", w.Value))
	if err != nil {
		return fmt.Errorf("save dek: %w", err)
	}
	return nil
}

// Get implements Store.
func (s *SQLServerStore) Get(ctx context.Context, key string) ([]byte, bool, error) {
	var v []byte
	err := s.db.QueryRowContext(ctx, "SELECT v FROM "+s.rows+" WHERE instance = @instance AND k = @k",
		sql.Named("instance", s.instance), sql.Named("k", key)).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("get row: %w", err)
	}
	return v, true, nil
}

// Put implements Store.
func (s *SQLServerStore) Put(ctx context.Context, key string, sealed []byte) error {
	_, err := s.db.ExecContext(ctx, `
MERGE `+s.rows+` WITH (HOLDLOCK) AS t
USING (SELECT @instance AS instance, @k AS k) AS src ON t.instance = src.instance AND t.k = src.k
WHEN MATCHED THEN UPDATE SET v = @v
WHEN NOT MATCHED THEN INSERT (instance, k, v) VALUES (@instance, @k, @v);`,
		sql.Named("instance", s.instance), sql.Named("k", key), sql.Named("v", sealed))
	if err != nil {
		return fmt.Errorf("put row: %w", err)
	}
	return nil
}

// Delete implements Store.
func (s *SQLServerStore) Delete(ctx context.Context, key string) error {
	_, err := s.db.ExecContext(ctx, "DELETE FROM "+s.rows+" WHERE instance = @instance AND k = @k",
		sql.Named("instance", s.instance), sql.Named("k", key))
	if err != nil {
		return fmt.Errorf("delete row: %w", err)
	}
	return nil
}

// Keys implements Store.
func (s *SQLServerStore) Keys(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT k FROM "+s.rows+" WHERE instance = @instance ORDER BY k",
		sql.Named("instance", s.instance))
	if err != nil {
		return nil, fmt.Errorf("list rows: %w", err)
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("list rows: %w", err)
		}
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

// Purge deletes this instance's rows and DEK record (test cleanup).
func (s *SQLServerStore) Purge(ctx context.Context) error {
	for _, t := range []string{s.rows, s.deks} {
		if _, err := s.db.ExecContext(ctx, "DELETE FROM "+t+" WHERE instance = @instance", sql.Named("instance", s.instance)); err != nil {
			return fmt.Errorf("purge: %w", err)
		}
	}
	return nil
}

// Dump returns every stored byte of this instance (rows and the DEK
// record), for the plaintext-DEK check of tests against SQL Server.
func (s *SQLServerStore) Dump(ctx context.Context) ([]byte, error) {
	var out []byte
	keys, err := s.Keys(ctx)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		v, _, err := s.Get(ctx, k)
		if err != nil {
			return nil, err
		}
		out = append(append(append(out, k...), 0), v...)
	}
	w, _, err := s.LoadDEK(ctx)
	if err != nil {
		return nil, err
	}
	out = append(append(append(out, w.KeyName...), w.KeyVersion...), w.Value...)
	return out, nil
}
