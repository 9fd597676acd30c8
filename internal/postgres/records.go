package postgres

import (
	"crypto/sha256"
	"unicode/utf8"

	"github.com/stevedore-dev/stevedore/report"
)

// A usable report's records (migration 00023) are made here, in the
// writer, and handed to stevedore_put_record_list (migration 00026), which
// inserts only those not stored yet: the final write no longer sends the
// whole report for Postgres to take apart package by package
// (stevedore_report_records), which cost about two thirds of that write.
//
// A record's body is the text Postgres prints for the jsonb value
// stevedore_report_records builds from the report's JSON (json.Marshal), and
// its hash the sha256 of that text, so that a record made here and one made
// by the trigger from a report row that holds its content (rows written by
// the previous release during an upgrade, direct inserts) are the same
// row. TestConformance's "records made by the writer are those Postgres
// makes" holds this on a real Postgres.

// recordList is a report's distinct records, as stevedore_put_record_list
// takes them: each one's hash, package name and source package name (NULL
// without a source; Postgres lowers both, with its own lower()), and body.
type recordList struct {
	hashes  [][]byte
	names   []string
	sources []*string
	bodies  []string
}

// reportRecords returns the records of r's packages: one per distinct
// record, packages without a name (nil or "") left out, as
// stevedore_report_records does. Strings are taken as json.Marshal writes
// them (bytes that are not UTF-8 become U+FFFD).
func reportRecords(r *report.Report) recordList {
	var (
		out  recordList
		seen = make(map[[sha256.Size]byte]bool, len(r.Packages))
		w    = recordWriter{r: r, dists: map[string][]byte{}, repos: map[string][]byte{}}
		b    []byte
	)
	for id, p := range r.Packages {
		if p == nil || p.Name == "" {
			continue
		}
		b = append(b[:0], `{"package": `...)
		b = appendPackage(b, p, 0)
		b = append(b, `, "environments": `...)
		envs, ok := r.Environments[id]
		b = w.environments(b, envs, ok)
		b = append(b, '}')
		h := sha256.Sum256(b)
		if seen[h] {
			continue
		}
		seen[h] = true
		out.hashes = append(out.hashes, h[:])
		out.names = append(out.names, jsonString(p.Name))
		var src *string
		if p.Source != nil {
			s := jsonString(p.Source.Name)
			src = &s
		}
		out.sources = append(out.sources, src)
		out.bodies = append(out.bodies, string(b))
	}
	return out
}

// jsonString is s as json.Marshal keeps it: each byte that is not part of
// UTF-8 replaced by U+FFFD.
func jsonString(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	b := make([]byte, 0, len(s)+8)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b = utf8.AppendRune(b, utf8.RuneError)
		} else {
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return string(b)
}

// The text is written as Postgres prints jsonb: object members sorted by
// the length of their name, then by its bytes (the orders below); ", "
// between members and elements, ": " after a name; strings as appendJSONB
// writes them.

// appendJSONB appends s as a jsonb string: as json.Marshal keeps it
// (jsonString), escaped as Postgres's escape_json does (quote, backslash,
// \b \f \n \r \t, other bytes under 0x20 as \u00xx in lower-case hex,
// everything else as it is).
func appendJSONB(b []byte, s string) []byte {
	s = jsonString(s)
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			b = append(b, `\"`...)
		case '\\':
			b = append(b, `\\`...)
		case '\b':
			b = append(b, `\b`...)
		case '\f':
			b = append(b, `\f`...)
		case '\n':
			b = append(b, `\n`...)
		case '\r':
			b = append(b, `\r`...)
		case '\t':
			b = append(b, `\t`...)
		default:
			if c < 0x20 {
				b = append(b, `\u00`...)
				b = append(b, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xf])
			} else {
				b = append(b, c)
			}
		}
	}
	return append(b, '"')
}

// field is one member of an object: its name and its value, a string or,
// when raw is set, that JSON text (a package's source); an optional one
// (omitempty) is left out when it is empty.
type field struct {
	name     string
	value    string
	raw      []byte
	optional bool
}

// appendObject writes an object of the fields, in the order given, which
// must be jsonb's.
func appendObject(b []byte, fs ...field) []byte {
	b = append(b, '{')
	n := 0
	for _, f := range fs {
		if f.optional && f.value == "" && f.raw == nil {
			continue
		}
		if n > 0 {
			b = append(b, ", "...)
		}
		n++
		b = append(b, '"')
		b = append(b, f.name...)
		b = append(b, `": `...)
		if f.raw != nil {
			b = append(b, f.raw...)
		} else {
			b = appendJSONB(b, f.value)
		}
	}
	return append(b, '}')
}

// appendPackage writes p as json.Marshal does, at depth 0 (a report's
// package) or more (its source, 1, and so on); stevedore_report_records
// removes the "id" of a package and of its source, not deeper.
func appendPackage(b []byte, p *report.Package, depth int) []byte {
	if p == nil {
		return append(b, "null"...)
	}
	var source []byte
	if p.Source != nil {
		source = appendPackage(nil, p.Source, depth+1)
	}
	fs := [...]field{
		{name: "id", value: p.ID},
		{name: "cpe", value: p.CPE, optional: true},
		{name: "arch", value: p.Arch, optional: true},
		{name: "kind", value: p.Kind, optional: true},
		{name: "name", value: p.Name},
		{name: "purl", value: p.PURL, optional: true},
		{name: "module", value: p.Module, optional: true},
		{name: "source", raw: source, optional: true},
		{name: "version", value: p.Version},
		{name: "normalized_version", value: p.NormalizedVersion, optional: true},
	}
	if depth <= 1 {
		return appendObject(b, fs[1:]...)
	}
	return appendObject(b, fs[:]...)
}

// recordWriter writes the environments of a report's packages, each
// distribution and repository encoded once.
type recordWriter struct {
	r            *report.Report
	dists, repos map[string][]byte
}

// environments writes what stevedore_record_environments makes of a
// package's environments (envs, present in the report when ok): null when
// there are none (absent, or JSON null), otherwise each environment as its
// distribution and repositories, without their ids.
func (w *recordWriter) environments(b []byte, envs []*report.Environment, ok bool) []byte {
	if !ok || envs == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, env := range envs {
		if i > 0 {
			b = append(b, ", "...)
		}
		if env == nil {
			b = append(b, "null"...)
			continue
		}
		b = append(b, `{"distribution": `...)
		b = append(b, w.distribution(env.DistributionID)...)
		b = append(b, `, "repositories": `...)
		if env.RepositoryIDs == nil {
			b = append(b, "null"...)
		} else {
			b = append(b, '[')
			n := 0
			for _, id := range env.RepositoryIDs {
				repo := w.repository(id)
				if repo == nil {
					continue
				}
				if n > 0 {
					b = append(b, ", "...)
				}
				n++
				b = append(b, repo...)
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	return append(b, ']')
}

// distribution returns the text of the report's distribution id without
// its id ("null" when there is none, or it is nil).
func (w *recordWriter) distribution(id string) []byte {
	if t, ok := w.dists[id]; ok {
		return t
	}
	t := []byte("null")
	if d := w.r.Distributions[id]; d != nil {
		t = appendObject(nil,
			field{name: "cpe", value: d.CPE}, field{name: "did", value: d.DID},
			field{name: "arch", value: d.Arch}, field{name: "name", value: d.Name},
			field{name: "version", value: d.Version}, field{name: "version_id", value: d.VersionID},
			field{name: "pretty_name", value: d.PrettyName}, field{name: "version_code_name", value: d.VersionCodeName})
	}
	w.dists[id] = t
	return t
}

// repository returns the text of the report's repository id without its
// id: "null" when it is nil, nil when the report has no such repository.
func (w *recordWriter) repository(id string) []byte {
	if t, ok := w.repos[id]; ok {
		return t
	}
	repo, ok := w.r.Repositories[id]
	var t []byte
	switch {
	case !ok:
	case repo == nil:
		t = []byte("null")
	default:
		t = appendObject(nil,
			field{name: "cpe", value: repo.CPE, optional: true}, field{name: "key", value: repo.Key, optional: true},
			field{name: "uri", value: repo.URI, optional: true}, field{name: "name", value: repo.Name})
	}
	w.repos[id] = t
	return t
}
