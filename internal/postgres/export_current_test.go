package postgres

// For the tests of package postgres_test.
var (
	SchemaCurrent     = schemaCurrent
	MigrationVersions = migrationVersions
	Fenced            = (*Store).fenced
	FencedNoSync      = (*Store).fencedNoSync
	WriteReportExtra  = (*Store).writeReportExtra
)
