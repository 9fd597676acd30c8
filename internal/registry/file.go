package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// LoadHosts reads per-registry settings from a JSON file: an object whose
// keys are registries (host[:port]) and whose values are Host objects:
//
//	{
//	  "registry.example.com": {"username": "robot", "password": "..."},
//	  "ghcr.io": {"token": "..."},
//	  "docker.io": {"mirrors": ["https://mirror.internal"], "concurrency": 4},
//	  "registry.lab:5000": {"plain_http": true}
//	}
//
// Unknown fields are errors. The file holds secrets: keep it readable by
// Stevedore only. Errors name the file and never include its values.
func LoadHosts(path string) (map[string]Host, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("registry settings: %w", err)
	}
	hosts, err := ParseHosts(b)
	if err != nil {
		return nil, fmt.Errorf("registry settings %s: %w", path, err)
	}
	return hosts, nil
}

// ParseHosts parses the content of a registry settings file (see LoadHosts).
func ParseHosts(b []byte) (map[string]Host, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	hosts := map[string]Host{}
	if err := dec.Decode(&hosts); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			return nil, fmt.Errorf("invalid JSON at byte %d", syn.Offset)
		case errors.As(err, &typ):
			return nil, fmt.Errorf("field %q: want a %s (byte %d)", typ.Field, typ.Type, typ.Offset)
		case errors.Is(err, io.ErrUnexpectedEOF):
			return nil, errors.New("invalid JSON: the document ends early")
		case errors.Is(err, io.EOF):
			return nil, errors.New("empty: want a JSON object of registries")
		}
		// Unknown fields and other decoding errors name the field, not
		// a value.
		return nil, fmt.Errorf("decode: %w", err)
	}
	if dec.More() {
		return nil, errors.New("more than one JSON document")
	}
	if err := (Config{Hosts: hosts}).Validate(); err != nil {
		return nil, err
	}
	return hosts, nil
}
