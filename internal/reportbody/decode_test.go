package reportbody

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// A native answer, stored or encoded for a request, reads back as the
// report it encodes; anything else is an error saying what is wrong.
func TestDecodeNative(t *testing.T) {
	for name, r := range fixtureReports(t) {
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		plain, err := Encode(r, ViewNative)
		if err != nil {
			t.Fatal(err)
		}
		stored, err := new(Compressor).EncodeStored(r, ViewNative)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range []Body{plain, stored} {
			got, err := DecodeNative(b.Encoding, bytes.NewReader(b.Data))
			if err != nil {
				t.Fatalf("%s %s: %v", name, b.Encoding, err)
			}
			if again, _ := json.Marshal(got); !bytes.Equal(again, want) {
				t.Fatalf("%s %s: read back a report other than the one encoded", name, b.Encoding)
			}
		}
	}
	r := fixtureReports(t)
	var one Body
	for _, rep := range r {
		var err error
		if one, err = new(Compressor).EncodeStored(rep, ViewNative); err != nil {
			t.Fatal(err)
		}
		break
	}
	twice, err := new(Compressor).Gzip(Body{View: ViewNative, Encoding: EncodingIdentity, Data: []byte("{}\n{}\n")})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, encoding string
		data           []byte
		want           string
	}{
		{"unknown coding", "br", one.Data, `unknown content coding "br"`},
		{"not gzip", EncodingGzip, []byte(`{"manifest_hash":"x"}`), "gzip: invalid header"},
		{"truncated", EncodingGzip, one.Data[:len(one.Data)-4], "unexpected EOF"},
		{"trailer corrupt", EncodingGzip, append(bytes.Clone(one.Data[:len(one.Data)-8]), 0, 0, 0, 0, 0, 0, 0, 0), "gzip: invalid checksum"},
		{"two values", EncodingGzip, twice.Data, "data after the report"},
		{"not a report", EncodingIdentity, []byte(`[1]`), "cannot unmarshal array"},
		{"empty", EncodingIdentity, nil, "EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeNative(tc.encoding, bytes.NewReader(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "decode the native answer") {
				t.Fatalf("%v, want an error about %q", err, tc.want)
			}
		})
	}
}

// FuzzDecodeNative: any stored bytes give a report or an error, never a
// panic; what reads back encodes to a native answer that reads back the same.
func FuzzDecodeNative(f *testing.F) {
	for _, r := range fixtureReports(f) {
		b, err := new(Compressor).EncodeStored(r, ViewNative)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(true, b.Data)
		break
	}
	f.Add(false, []byte(`{"manifest_hash":"sha256:00","state":"IndexFinished","packages":{"1":{"id":"1","name":"a"}}}`+"\n"))
	f.Fuzz(func(t *testing.T, gz bool, data []byte) {
		coding := EncodingIdentity
		if gz {
			coding = EncodingGzip
		}
		r, err := DecodeNative(coding, bytes.NewReader(data))
		if err != nil {
			return
		}
		b, err := Encode(r, ViewNative)
		if err != nil {
			t.Fatalf("a report read back does not encode: %v", err)
		}
		again, err := DecodeNative(EncodingIdentity, bytes.NewReader(b.Data))
		if err != nil {
			t.Fatalf("its answer does not read back: %v", err)
		}
		x, _ := json.Marshal(r)
		y, _ := json.Marshal(again)
		if !bytes.Equal(x, y) {
			t.Fatalf("read back %s, then %s", x, y)
		}
	})
}
