package postgres

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestWithoutSecrets(t *testing.T) {
	job := `{"manifest":{"hash":"sha256:aa","layers":[
  {"hash":"sha256:bb","uri":"https://robot:pw-secret@r.example/v2/x/blobs/sha256:bb","headers":{"Authorization":["Bearer tok-secret"]},"size":3},
  {"hash":"sha256:cc","uri":"https://r.example/v2/x/blobs/sha256:cc"}]},
 "scanner_state":"s1","requested_at":"2026-01-01T00:00:00Z","generation":"g","force":true,"future_field":{"kept":1},
 "sealed":"c2VhbGVkLWNyZWRlbnRpYWxz"}`
	out, err := withoutSecrets([]byte(job))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"pw-secret", "tok-secret", "robot", "headers", "sealed", "c2VhbGVkLWNyZWRlbnRpYWxz"} {
		if strings.Contains(string(out), s) {
			t.Errorf("%q kept: %s", s, out)
		}
	}
	var got struct {
		Manifest struct {
			Hash   string
			Layers []struct {
				Hash, URI string
				Size      int
			}
		}
		ScannerState string `json:"scanner_state"`
		Force        bool
		Future       map[string]int `json:"future_field"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if got.Manifest.Hash != "sha256:aa" || len(got.Manifest.Layers) != 2 || got.Manifest.Layers[0].URI != "https://r.example/v2/x/blobs/sha256:bb" ||
		got.Manifest.Layers[0].Size != 3 || got.ScannerState != "s1" || !got.Force || got.Future["kept"] != 1 {
		t.Fatalf("fields lost: %s", out)
	}
	if out, err := withoutSecrets(nil); out != nil || err != nil {
		t.Fatalf("nil job: %s %v", out, err)
	}
	if out, err := withoutSecrets([]byte(`{"manifest":null,"sealed":"c2VhbGVk"}`)); err != nil || strings.Contains(string(out), "sealed") {
		t.Fatalf("a job without a manifest kept its sealed credentials: %s %v", out, err)
	}
	if _, err := withoutSecrets([]byte("{")); err == nil {
		t.Fatal("a broken job was stored")
	}
}
