package api

import _ "embed"

// OpenAPISpec is the API description served at /openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPISpec []byte
