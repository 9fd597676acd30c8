// Package apierr writes the JSON answers of Stevedore's HTTP handlers (the
// API, the webhooks, the Clair proxy): one writer for errors, in Clair's
// shape {"code": ..., "message": ...}, and one for other JSON documents.
// It imports nothing of Stevedore's, so that every handler package can use
// it whatever it imports.
package apierr

import (
	"encoding/json"
	"net/http"
)

// Body is an error answer: a short machine-readable code ("bad-request",
// "not-found", ...) and a message for a person.
type Body struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Write answers with status and Body{code, msg} as application/json,
// dropping any Link header set for a success and telling browsers not to
// sniff the content.
func Write(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Del("Link")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Type", "application/json")
	WriteJSON(w, status, Body{Code: code, Message: msg})
}

// WriteJSON answers with status and v as JSON, as application/json unless a
// Content-Type is set already. An error writing (the client gone) is not
// reported: the status is sent already.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
