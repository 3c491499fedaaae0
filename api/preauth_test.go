package api

import (
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/goat-gateway/goat-gateway/gen"
)

// Every operation that takes a body is authorized before its body is read:
// a new one without a row in preauthorize would read bodies of callers it
// then refuses.
func TestPreauthorize_CoversEveryBody(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(gen.Spec)
	if err != nil {
		t.Fatal(err)
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if op.RequestBody == nil {
				continue
			}
			if preauthorize[op.OperationID] == nil {
				t.Errorf("%s %s (%s) takes a body but has no row in preauthorize", method, path, op.OperationID)
			}
		}
	}
}
