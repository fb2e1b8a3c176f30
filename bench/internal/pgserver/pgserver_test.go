package pgserver

import (
	"slices"
	"testing"
)

func TestVersionOf(t *testing.T) {
	tests := []struct {
		give string
		want int
	}{
		{"/usr/lib/postgresql/15/bin/initdb", 15},
		{"/usr/lib/postgresql/9/bin/initdb", 9},
		{"/elsewhere/initdb", 0},
	}
	for _, tt := range tests {
		if got := versionOf(tt.give); got != tt.want {
			t.Errorf("versionOf(%q) = %d, want %d", tt.give, got, tt.want)
		}
	}
}

func TestSettingsLoadStatementCountingAndRoomForThePools(t *testing.T) {
	got := Settings(5999, "/tmp/x")
	for _, want := range []string{"max_connections=400", "shared_preload_libraries=pg_stat_statements", "listen_addresses=127.0.0.1"} {
		if !slices.Contains(got, want) {
			t.Errorf("settings %v lack %s", got, want)
		}
	}
	if i := slices.Index(got, "-p"); i < 0 || got[i+1] != "5999" {
		t.Errorf("port not set: %v", got)
	}
	// Durability stays production's: nothing turns fsync or synchronous commit off.
	for _, s := range got {
		if s == "fsync=off" || s == "synchronous_commit=off" {
			t.Errorf("settings weaken durability: %v", got)
		}
	}
}
