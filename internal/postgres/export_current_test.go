package postgres

import "github.com/stevedore-dev/stevedore/report"

// For the tests of package postgres_test.
var (
	SchemaCurrent     = schemaCurrent
	MigrationVersions = migrationVersions
	Fenced            = (*Store).fenced
	FencedNoSync      = (*Store).fencedNoSync
	WriteReportExtra  = (*Store).writeReportExtra
)

// ReportRecords returns r's records as the final write hands them to
// stevedore_put_record_list.
func ReportRecords(r *report.Report) (hashes [][]byte, names []string, sources []*string, bodies []string) {
	l := reportRecords(r)
	return l.hashes, l.names, l.sources, l.bodies
}
