package harbor_test

import (
	"bytes"
	"encoding/json"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/stevedore-dev/stevedore/internal/testing/fixtures"
)

// contract is Harbor's scanner adapter OpenAPI document
// (testdata/fixtures/harbor/scanner-adapter-openapi-v1.2.yaml, read with
// kin-openapi) with its component schemas turned into one JSON Schema
// document (draft 2020-12, compiled by santhosh-tekuri/jsonschema with
// format assertions): "#/components/schemas/X" becomes "#/$defs/X",
// OpenAPI's "nullable" an anyOf with null, and "example" (not a JSON Schema
// keyword, and in this document not always valid) is dropped.
type contract struct {
	doc     *openapi3.T
	schemas map[string]*jsonschema.Schema
}

func loadContract(t *testing.T) *contract {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromFile(fixtures.Path(t, "harbor/scanner-adapter-openapi-v1.2.yaml"))
	if err != nil {
		t.Fatalf("load Harbor's OpenAPI document: %v", err)
	}
	defs := map[string]any{}
	for name, s := range doc.Components.Schemas {
		raw, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatal(err)
		}
		defs[name] = toJSONSchema(v)
	}
	raw, err := json.Marshal(map[string]any{"$schema": "https://json-schema.org/draft/2020-12/schema", "$defs": defs})
	if err != nil {
		t.Fatal(err)
	}
	root, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	const url = "https://stevedore.test/harbor-scanner-adapter-v1.2.json"
	if err := c.AddResource(url, root); err != nil {
		t.Fatal(err)
	}
	k := &contract{doc: doc, schemas: map[string]*jsonschema.Schema{}}
	for name := range defs {
		if k.schemas[name], err = c.Compile(url + "#/$defs/" + name); err != nil {
			t.Fatalf("compile %s: %v", name, err)
		}
	}
	return k
}

// toJSONSchema rewrites an OpenAPI 3.0 schema (as JSON) into JSON Schema.
func toJSONSchema(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, val := range x {
			switch k {
			case "example", "nullable":
			case "$ref":
				out[k] = strings.Replace(val.(string), "#/components/schemas/", "#/$defs/", 1)
			default:
				out[k] = toJSONSchema(val)
			}
		}
		if x["nullable"] == true {
			return map[string]any{"anyOf": []any{out, map[string]any{"type": "null"}}}
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = toJSONSchema(e)
		}
		return out
	}
	return v
}

// validate checks a JSON document against the named component schema.
func (k *contract) validate(t *testing.T, schema string, body []byte) {
	t.Helper()
	if err := k.check(t, schema, body); err != nil {
		t.Fatalf("body does not validate against Harbor's %s: %v\n%s", schema, err, body)
	}
}

func (k *contract) check(t *testing.T, schema string, body []byte) error {
	t.Helper()
	s := k.schemas[schema]
	if s == nil {
		t.Fatalf("no schema %s in the contract", schema)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return err
	}
	return s.Validate(v)
}

// The converted schemas are not vacuous: answers that break Harbor's
// document fail them.
func TestContractCatchesBadAnswers(t *testing.T) {
	k := loadContract(t)
	for _, tc := range []struct{ schema, body string }{
		{"HarborSbomReport", `{"media_type": "text/spdx", "sbom": {}}`},
		{"HarborSbomReport", `{"media_type": "application/spdx+json", "sbom": "not an object"}`},
		{"HarborSbomReport", `{"generated_at": "yesterday"}`},
		{"ScannerAdapterMetadata", `{"scanner": {"name": "x"}}`},
		{"ScannerAdapterMetadata", `{"scanner": {}, "capabilities": [{"type": "sbom", "consumes_mime_types": []}]}`},
		{"ScannerAdapterMetadata", `{"scanner": {}, "capabilities": [], "properties": {"a": 1}}`},
		{"ScanResponse", `{}`},
		{"ErrorResponse", `{"error": {"message": 3}}`},
		{"ScanRequest", `{"registry": {}, "artifact": {}, "enabled_capabilities": [{"type": "sbom", "parameters": {"sbom_media_types": ["text/spdx"]}}]}`},
	} {
		if err := k.check(t, tc.schema, []byte(tc.body)); err == nil {
			t.Errorf("%s accepts %s", tc.schema, tc.body)
		}
	}
	if err := k.check(t, "ScanRequest", []byte(`{"registry": {}, "artifact": {}, "enabled_capabilities": [{"type": "sbom", "parameters": null}]}`)); err != nil {
		t.Errorf("nullable parameters: %v", err)
	}
}

// checkAnswer checks an answer of operation (method, path in the
// document) against the document: its status is one the operation
// declares; when the declared answer has content, the Content-Type is one
// of its media types and the body validates against its schema. It returns
// the schema's name ("" when none).
func (k *contract) checkAnswer(t *testing.T, method, path string, status int, header http.Header, body []byte) string {
	t.Helper()
	item := k.doc.Paths.Value(path)
	if item == nil {
		t.Fatalf("%s is not in Harbor's document", path)
	}
	op := item.GetOperation(method)
	if op == nil {
		t.Fatalf("%s %s is not in Harbor's document", method, path)
	}
	resp := op.Responses.Value(strconv.Itoa(status))
	if resp == nil || resp.Value == nil {
		t.Fatalf("%s %s: HTTP %d is not an answer Harbor's document declares (%s)", method, path, status, body)
	}
	if len(resp.Value.Content) == 0 {
		return ""
	}
	ct := header.Get("Content-Type")
	mt := resp.Value.Content.Get(ct)
	if mt == nil {
		t.Fatalf("%s %s: HTTP %d with Content-Type %q, want one of %q", method, path, status, ct, sortedKeys(resp.Value.Content))
	}
	if mt.Schema == nil || mt.Schema.Ref == "" {
		return ""
	}
	name := strings.TrimPrefix(mt.Schema.Ref, "#/components/schemas/")
	k.validate(t, name, body)
	return name
}

func sortedKeys(c openapi3.Content) []string {
	return slices.Sorted(maps.Keys(c))
}

// requestTypes are the media types the document gives for operation's
// request body.
func (k *contract) requestTypes(t *testing.T, method, path string) []string {
	t.Helper()
	op := k.doc.Paths.Value(path).GetOperation(method)
	var out []string
	for ct := range op.RequestBody.Value.Content {
		if _, _, err := mime.ParseMediaType(ct); err != nil {
			t.Fatalf("request type %q: %v", ct, err)
		}
		out = append(out, ct)
	}
	return out
}
