package gen

// The spec is copied next to this package because go:embed cannot reach
// parent directories; spec_test.go fails when the copy is stale.
//go:generate cp ../openapi.yaml openapi.yaml
//go:generate go tool oapi-codegen -config models.cfg.yaml ../openapi.yaml
//go:generate go tool oapi-codegen -config server.cfg.yaml ../openapi.yaml
//go:generate go tool oapi-codegen -config client.cfg.yaml ../openapi.yaml
