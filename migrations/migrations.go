// Package migrations holds the hand-written SQL schema and applies it with bun/migrate.
// The schema is never derived from the models: what runs in production is what is reviewed here.
package migrations

import (
	"context"
	"embed"
	"fmt"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/migrate"
)

//go:embed sql/*.sql
var files embed.FS

// all is the embedded migration set.
var all = func() *migrate.Migrations {
	m := migrate.NewMigrations()
	if err := m.Discover(files); err != nil {
		panic(fmt.Sprintf("discover migrations: %v", err)) // embedded at build time: cannot fail at run time
	}
	return m
}()

// Up applies every pending migration under a database lock, so concurrent
// start-ups (several replicas) apply each migration once. It returns how many ran.
func Up(ctx context.Context, db *bun.DB) (applied int, err error) {
	return locked(ctx, db, "migrate", (*migrate.Migrator).Migrate)
}

// Down rolls back the last applied group of migrations and returns how many were rolled back.
func Down(ctx context.Context, db *bun.DB) (rolledBack int, err error) {
	return locked(ctx, db, "roll back", (*migrate.Migrator).Rollback)
}

// locked runs one migrator step while holding bun/migrate's table lock.
func locked(ctx context.Context, db *bun.DB, what string,
	step func(*migrate.Migrator, context.Context, ...migrate.MigrationOption) (*migrate.MigrationGroup, error),
) (int, error) {
	m := migrate.NewMigrator(db, all)
	if err := m.Init(ctx); err != nil {
		return 0, fmt.Errorf("init migrations: %w", err)
	}
	if err := m.Lock(ctx); err != nil {
		return 0, fmt.Errorf("lock migrations: %w", err)
	}
	defer func() { _ = m.Unlock(ctx) }()
	group, err := step(m, ctx)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	return len(group.Migrations), nil
}
