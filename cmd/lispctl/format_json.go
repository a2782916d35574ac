package main

import (
	"encoding/json"
	"io"
)

// writeJSONLine writes v as one line of compact JSON (JSON Lines), without
// escaping HTML characters.
func writeJSONLine(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
